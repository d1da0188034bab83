"""A job out of attempts: the cleanup a failed attempt runs, run once more before it is failed.

An attempt killed with its worker removes nothing; the next attempt removes what it left. When
no attempt is left (``attempts_exhausted``), :func:`fail_exhausted` runs the job kind's cleanup
steps from what the job's recorded steps say its attempts made, then records the failure. A
cleanup step that fails (the host unreachable, say) is left pending on the job
(:func:`ceso.jobs.cleanup.undo`); ``attempts_exhausted`` stays the job's error.

A job that ended with cleanup left pending (``result: {"pending_cleanup": [...]}``, e.g. the
host stopped answering) has it retried by a worker of its host
(:func:`retry_pending_cleanups`, from the worker's recovery thread): the kind's cleanup steps
run again, and once they all succeed a "pending cleanup" step is appended to the job (with its
audit record) and the result cleared. The job keeps its state and error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ceso.errors import CesoError
from ceso.jobs.cleanup import pending_result, undo
from ceso.jobs.context import JobContext
from ceso.jobs.store import ClaimLostError, finish_job
from ceso.plans import PENDING_CLEANUP, NewVmSteps, Step
from ceso.security.redact import redact

if TYPE_CHECKING:
    from ceso.db.models import Job
    from ceso.runtime import Runtime

__all__ = ["cleanups_for", "fail_exhausted", "retry_pending_cleanups"]

log = logging.getLogger(__name__)

Cleanups = list[tuple[Step, Callable[[], object]]]


def cleanups_for(ctx: JobContext) -> Cleanups:
    """The cleanup steps (step, action) of the job's kind; none for a kind that leaves nothing."""
    kind, p = ctx.job.kind, ctx.params
    if kind == "template.import":
        from ceso.operations.template_import import import_leftovers

        return [(NewVmSteps.remove_leftovers, lambda: import_leftovers(ctx, ctx.backend(), name=p["name"]))]
    if kind == "backup.restore" and not p.get("as"):
        return []  # in place: the VM is the operator's own and never removed as a leftover
    if kind in ("vm.create", "vm.clone", "backup.restore"):
        from ceso.operations.leftovers import remove_leftovers

        # A restore's params name its new VM under "as" (RestoreBackup's alias), the others "name".
        name = p["as"] if kind == "backup.restore" else p["name"]
        source = p.get("source") if kind == "vm.clone" else None

        def remove() -> None:
            remove_leftovers(ctx, ctx.backend(), name=name, source_name=source, power_source_on=True)

        return [(NewVmSteps.remove_leftovers, remove)]
    if kind == "backup.drill":
        from ceso.backup.drills import drill_vm_name
        from ceso.operations.leftovers import remove_leftovers
        from ceso.plans import DrillSteps

        name = drill_vm_name(p["vm"], ctx.job.id)

        def remove_drill_vm() -> None:
            remove_leftovers(ctx, ctx.backend(), name=name, source_name=None)

        return [(DrillSteps.remove_leftovers, remove_drill_vm)]
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
        try:
            cleanups = cleanups_for(ctx)
        except Exception:  # params it cannot read: fail the job all the same
            log.exception("job %s: its cleanup could not be prepared", job.id)
            cleanups = []
        for step, action in cleanups:
            undo(ctx, step, action, cause=error)
        ctx.flush()
    except ClaimLostError:
        log.warning("job %s: claim lost while cleaning up after its last attempt", job.id)
        return
    finally:
        ctx.stop_heartbeat()
    finish_job(
        runtime.engine,
        job_id=job.id,
        attempt=ctx.attempt,
        state="failed",
        error=error,
        result=pending_result(error),
    )


def retry_pending_cleanups(runtime: Runtime, hosts: list[str], *, limit: int = 20) -> int:
    """Retry the pending cleanup of ended jobs on ``hosts`` (at most ``limit`` jobs, oldest first);
    return how many were cleaned up. Never raises: a cleanup that fails again stays pending."""
    import sqlalchemy as sa
    from sqlmodel import Session, col, select

    from ceso.db.models import Job

    try:
        with Session(runtime.engine) as session:
            query = (
                select(Job)
                .where(col(Job.host).in_(hosts), col(Job.state).in_(("failed", "cancelled")))
                .where(sa.cast(col(Job.result), sa.Text).like('%"pending_cleanup"%'))
                .order_by(col(Job.finished_at))
                .limit(limit)
            )
            jobs = list(session.exec(query))
    except Exception:
        log.warning("looking for pending cleanups failed", exc_info=True)
        return 0
    done = 0
    for job in jobs:
        try:
            done += _retry(runtime, job)
        except Exception:
            log.warning("pending cleanup of job %s failed again; left pending", job.id, exc_info=True)
    return done


def _retry(runtime: Runtime, job: Job) -> int:
    from sqlmodel import Session

    from ceso.audit.jobs import step_event
    from ceso.audit.store import record
    from ceso.db.models import Job as JobRow
    from ceso.db.types import utcnow

    ctx = JobContext(runtime, job)
    step: dict[str, Any] = {"name": PENDING_CLEANUP.name, "state": "running", "cleanup": True}
    step["started_at"] = utcnow().isoformat()
    ctx._current = step  # the host calls the cleanup makes are recorded on this step
    ran: list[str] = []
    for cleanup, action in cleanups_for(ctx):
        action()  # raises: the cleanup stays pending, for the next round
        ran.append(cleanup.name)
    step["ran"] = ran
    ctx._current = None
    step["state"] = "succeeded"
    with Session(runtime.engine) as session:
        row = session.get(JobRow, job.id)
        if row is None or row.state != job.state or row.result != job.result:
            return 0  # changed meanwhile (another worker did it)
        row.steps = [*row.steps, redact(step)]
        row.result = None
        row.updated_at = utcnow()
        session.add(row)
        session.commit()
    record(runtime.engine, step_event(job, redact(step)))
    log.info("job %s: pending cleanup done (%s)", job.id, ", ".join(ran))
    return 1
