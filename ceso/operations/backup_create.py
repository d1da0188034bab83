"""``backup.create``: back up one VM to a target (see :mod:`ceso.backup.create`)."""

from __future__ import annotations

from typing import Any

from ceso.backup.create import run_backup
from ceso.backup.keys import load_key
from ceso.jobs.context import JobContext


def run_backup_create(ctx: JobContext) -> dict[str, Any]:
    key_id = ctx.params.get("key_id")
    # The key is read here, in the worker, from its own secret store: it never travels in a job.
    key = load_key(ctx.runtime.secrets, expected_id=key_id) if key_id else None
    return run_backup(ctx, key)
