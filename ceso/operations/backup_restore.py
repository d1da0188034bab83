"""``backup.restore``: a backup set written back as a new VM (see :mod:`ceso.backup.restore`)."""

from __future__ import annotations

from typing import Any

from ceso.backup.restore import run_restore
from ceso.jobs.context import JobContext


def run_backup_restore(ctx: JobContext) -> dict[str, Any]:
    return run_restore(ctx)
