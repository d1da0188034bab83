"""Tasks that ``ceso beat`` sends (see :mod:`ceso.backup.schedule`); each hands off to the core and
reports how its fired slot went in SQL (``ceso schedule list``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ceso.backup.schedule import PRUNE_TASK, SCHEDULED_BACKUP_TASK
from ceso.runtime import get_runtime
from workers.app import app

log = logging.getLogger(__name__)


@app.task(name=SCHEDULED_BACKUP_TASK)  # type: ignore[untyped-decorator]
def scheduled_backup(item: dict[str, Any], slot: str | None = None, fire: int | None = None) -> list[str]:
    """Submit one schedule's ``backup.create`` jobs (one VM, or each VM of a tag); return their ids.

    ``slot`` is the cron minute beat fired (the jobs' idempotency keys name it, so a message
    delivered twice makes one job); without it (an older beat) the current minute is used.
    """
    from ceso.backup.schedule import submit_scheduled_backup
    from ceso.db.types import utcnow

    runtime = get_runtime()
    when = datetime.fromisoformat(slot) if slot else utcnow()
    with _reported(runtime, fire) as report:
        ids = submit_scheduled_backup(runtime, item, now=when)
        report(f"submitted {len(ids)} backup job(s)", ids)
    return ids


@app.task(name=PRUNE_TASK)  # type: ignore[untyped-decorator]
def scheduled_prune(slot: str | None = None, fire: int | None = None) -> int:
    """Apply the retention policies (merging chains into synthetic fulls); return how many sets expired."""
    from ceso.backup.prune import prune

    runtime = get_runtime()
    with _reported(runtime, fire) as report:
        plan = prune(runtime)
        expired = len(plan.expire)
        merged = sum(1 for m in plan.merge if m.get("synthetic_id"))
        failed = [m["error"] for m in plan.merge if m.get("error")]
        outcome = f"expired {expired} backup set(s)"
        if merged:
            outcome += f", {merged} chain(s) merged into synthetic fulls"
        if failed:
            outcome += f", {len(failed)} merge(s) failed (chains kept): {failed[0]}"
        report(outcome, None)
    return expired


@contextmanager
def _reported(runtime: Any, fire: int | None) -> Iterator[Callable[[str, list[str] | None], None]]:
    """Record the fired slot's outcome when the task ends: done with the summary given to the
    yielded ``report(outcome, job_ids)``, or failed with the error (then re-raised). A failure to
    record is logged, never raised over the task's own result."""
    summary: list[Any] = ["done", None]

    def report(outcome: str, job_ids: list[str] | None) -> None:
        summary[:] = [outcome, job_ids]

    try:
        yield report
    except Exception as exc:
        from ceso.security.redact import redact_text

        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        _record(
            runtime, fire, ok=False, outcome=redact_text(f"{type(exc).__name__}: {message}"), job_ids=None
        )
        raise
    _record(runtime, fire, ok=True, outcome=summary[0], job_ids=summary[1])


def _record(runtime: Any, fire: int | None, *, ok: bool, outcome: str, job_ids: list[str] | None) -> None:
    if fire is None:
        return
    from ceso.beat.fires import record_outcome

    try:
        record_outcome(runtime.engine, fire, ok=ok, outcome=outcome, job_ids=job_ids)
    except Exception:
        log.warning("cannot record schedule fire %s", fire, exc_info=True)
