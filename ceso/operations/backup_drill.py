"""``backup.drill``: a backup restored as a throwaway VM, booted, recorded and removed (see
:mod:`ceso.backup.drill`)."""

from __future__ import annotations

from typing import Any

from ceso.backup.drill import run_drill
from ceso.jobs.context import JobContext


def run_backup_drill(ctx: JobContext) -> dict[str, Any]:
    return run_drill(ctx)
