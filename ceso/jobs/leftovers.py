"""A job out of attempts: the cleanup a failed attempt runs, run once more before it is failed.

An attempt killed with its worker removes nothing; the next attempt removes what it left. When
no attempt is left (``attempts_exhausted``), :func:`fail_exhausted` runs the job kind's cleanup
steps from what the job's recorded steps say its attempts made, then records the failure. A
cleanup step that fails (the host unreachable, say) is left pending on the job
(:func:`ceso.jobs.cleanup.undo`); ``attempts_exhausted`` stays the job's error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ceso.errors import CesoError
from ceso.jobs.cleanup import undo
from ceso.jobs.context import JobContext
from ceso.jobs.store import ClaimLostError, finish_job

if TYPE_CHECKING:
    from ceso.db.models import Job
    from ceso.runtime import Runtime

__all__ = ["cleanups_for", "fail_exhausted"]

log = logging.getLogger(__name__)

Cleanups = list[tuple[str, Callable[[], object]]]


def cleanups_for(ctx: JobContext) -> Cleanups:
    """The cleanup steps (name, action) of the job's kind; none for a kind that leaves nothing."""
    kind, p = ctx.job.kind, ctx.params
    if kind in ("vm.create", "vm.clone", "backup.restore"):
        from ceso.operations.leftovers import remove_leftovers

        name = p["name"]
        source = p.get("source") if kind == "vm.clone" else None

        def remove() -> None:
            from ceso.routes import vm_backend

            remove_leftovers(ctx, vm_backend(ctx), name=name, source_name=source, power_source_on=True)

        return [("remove leftovers", remove)]
    if kind == "backup.create":
        from ceso.backup.leftovers import backup_cleanups

        return backup_cleanups(ctx)
    return []


def fail_exhausted(runtime: Runtime, job: Job, error: CesoError, *, claimed_at: float) -> None:
    """Run the cleanup of claimed job ``job`` (as cleanup steps), then fail it with ``error``.

    Never raises for a cleanup's failure (it is left pending); ClaimLostError ends the run quietly.
    """
    ctx = JobContext(runtime, job, claimed_at=claimed_at)
    ctx.start_heartbeat()
    try:
        for name, action in cleanups_for(ctx):
            undo(ctx, name, action, cause=error)
        ctx.flush()
    except ClaimLostError:
        log.warning("job %s: claim lost while cleaning up after its last attempt", job.id)
        return
    finally:
        ctx.stop_heartbeat()
    finish_job(runtime.engine, job_id=job.id, attempt=ctx.attempt, state="failed", error=error)
