"""Tasks that Celery beat sends (see :mod:`ceso.backup.schedule`); each hands off to the core."""

from __future__ import annotations

from typing import Any

from ceso.backup.schedule import PRUNE_TASK, SCHEDULED_BACKUP_TASK
from ceso.runtime import get_runtime
from workers.app import app


@app.task(name=SCHEDULED_BACKUP_TASK)  # type: ignore[untyped-decorator]
def scheduled_backup(item: dict[str, Any]) -> list[str]:
    """Submit one schedule's ``backup.create`` jobs (one VM, or each VM of a tag); return their ids."""
    from ceso.backup.schedule import submit_scheduled_backup
    from ceso.db.types import utcnow

    return submit_scheduled_backup(get_runtime(), item, now=utcnow())


@app.task(name=PRUNE_TASK)  # type: ignore[untyped-decorator]
def scheduled_prune() -> int:
    """Apply the retention policies; return how many sets expired."""
    from ceso.backup.prune import prune

    return len(prune(get_runtime()).expire)
