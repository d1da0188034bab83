"""Running one delivery of a job: claim, run the handler, record the outcome.

Celery-free, so it can be tested without a broker; ``workers.tasks`` wraps it.
Contract of :func:`run_job`: it never raises for a job's own failure (that is
recorded in SQL); it returns what the delivery should do next.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from enum import Enum

from sqlmodel import Session

from ceso.db.models import TERMINAL_STATES, Job
from ceso.errors import CesoError, JobCancelledError, TimeoutExpiredError
from ceso.jobs.cleanup import pending_result
from ceso.jobs.context import JobContext
from ceso.jobs.leftovers import fail_exhausted
from ceso.jobs.notify import OUTCOME, notify_job
from ceso.jobs.store import ClaimLostError, claim_job, finish_job
from ceso.log import job_id_var
from ceso.metrics.record import observe_job, observe_queue_wait
from ceso.operations.handlers import handler_for
from ceso.runtime import Runtime
from ceso.security.worker import ClaimCheck, begin_claimed, end_claimed

__all__ = ["Delivery", "run_job", "worker_identity"]

log = logging.getLogger(__name__)


class Delivery(Enum):
    """What the queue should do with the message after :func:`run_job`."""

    DONE = "done"  # ran (any outcome) or nothing to do: acknowledge
    BUSY = "busy"  # another live delivery holds the job: look again later
    RETRY = "retry"  # SQL could not be reached: deliver again later, never acknowledge as done


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(
    runtime: Runtime,
    job_id: str,
    *,
    time_limit_exceptions: tuple[type[BaseException], ...] = (),
) -> Delivery:
    """Claim job ``job_id`` and run it to an outcome recorded in SQL.

    Returns RETRY, never DONE, when SQL cannot be reached at any point (the claim, or the outcome's
    write): the delivery must come again, since nothing may be recorded. A run interrupted that way
    after its claim is re-claimed once its heartbeat is stale, as after a worker's death.
    """
    try:
        return _run_job(runtime, job_id, time_limit_exceptions)
    except Exception as exc:
        cause = _sql_unreachable(exc)
        if cause is None:
            raise
        log.warning(
            "job %s: database unreachable (%s); delivering it again later", job_id, type(cause).__name__
        )
        return Delivery.RETRY


def _sql_unreachable(exc: BaseException) -> BaseException | None:
    """The connection error behind ``exc`` (itself, or one it was raised from, e.g. the schema
    check's "database unreachable"), or None."""
    from ceso.operations.reconcile import sql_unreachable

    return sql_unreachable(exc)


def _run_job(
    runtime: Runtime, job_id: str, time_limit_exceptions: tuple[type[BaseException], ...]
) -> Delivery:
    engine = runtime.engine
    # The actor is resolved and the claim audited (job.claimed) in the claim's transaction.
    check = ClaimCheck(runtime)
    claimed_at = time.monotonic()  # before the claim: its answer is at least this fresh
    job = claim_job(
        engine,
        job_id=job_id,
        worker=worker_identity(),
        stale_after_s=runtime.settings.jobs.stale_after_s,
        audit=check,
    )
    if job is None:
        return _unclaimable(runtime, job_id)
    token = job_id_var.set(job.id)
    caller = None
    try:
        # The actor and its mode *now* (revoked agent, expired promotion, forged message): audited.
        caller, refused = begin_claimed(runtime, job, check)
        if refused:
            return Delivery.DONE
        if job.attempts > job.max_attempts:
            err = CesoError(
                f"job {job.id} was delivered {job.attempts} times without finishing (cap {job.max_attempts}); "
                "its worker kept dying",
                code="attempts_exhausted",
            )
            fail_exhausted(runtime, job, err, claimed_at=claimed_at)  # after the cleanup an attempt runs
            log.error("%s", err.message)
            return Delivery.DONE
        if job.attempts == 1 and job.started_at is not None:
            observe_queue_wait(job.kind, job.host, (job.started_at - job.created_at).total_seconds())
        started = time.monotonic()
        outcome = _execute(runtime, job, time_limit_exceptions, claimed_at)
        if outcome != "claim_lost":
            observe_job(job.kind, job.host, outcome, time.monotonic() - started)
        return Delivery.DONE
    finally:
        notify_job(runtime, job_id, OUTCOME)  # the outcome is committed by now: wake whoever waits, first
        end_claimed(runtime, job, caller)  # unbinds the actor, drops sealed params; never raises
        job_id_var.reset(token)


def _unclaimable(runtime: Runtime, job_id: str) -> Delivery:
    with Session(runtime.engine) as session:
        job = session.get(Job, job_id)
    if job is None:
        log.warning("message for unknown job %s dropped", job_id)
        return Delivery.DONE
    if job.state in TERMINAL_STATES:
        log.info("duplicate delivery of finished job %s dropped", job_id)
        return Delivery.DONE
    if job.cancel_requested:
        finish_job(
            runtime.engine,
            job_id=job_id,
            attempt=None,
            state="cancelled",
            error=JobCancelledError("cancelled while its worker was gone"),
        )
        end_claimed(runtime, job, None)
        return Delivery.DONE
    log.info("job %s is held by %s; looking again later", job_id, job.worker)
    return Delivery.BUSY


def _execute(  # noqa: PLR0911  (one return per outcome)
    runtime: Runtime, job: Job, time_limit_exceptions: tuple[type[BaseException], ...], claimed_at: float
) -> str:
    """Run the handler and record its outcome; return it (succeeded, failed, cancelled, claim_lost)."""
    engine = runtime.engine
    ctx = JobContext(runtime, job, claimed_at=claimed_at)
    ctx.start_heartbeat()
    log.info("job %s (%s on %s) started, attempt %d", job.id, job.kind, job.host, job.attempts)
    try:
        try:
            handler = handler_for(job.kind)
            result = handler(ctx)
            # One transaction: the last step's end and its record, then the outcome and its record.
            # Also the final check: a cancel requested by then gives "cancelled", a lost claim raises.
            outcome = ctx.finish(result)
        except BaseException:
            ctx.flush()  # the steps that ended before the outcome is recorded
            raise
    except ClaimLostError:
        log.warning("job %s: claim lost; another delivery owns it now", job.id)
        return "claim_lost"
    except JobCancelledError as exc:
        finish_job(
            engine,
            job_id=job.id,
            attempt=ctx.attempt,
            state="cancelled",
            error=exc,
            result=pending_result(exc),
        )
        log.info("job %s cancelled", job.id)
        return "cancelled"
    except time_limit_exceptions as exc:
        return _timed_out(ctx, exc)
    except CesoError as exc:
        # A time limit that struck inside a host call comes wrapped in the call's error.
        if (limit := _raised_from(exc, time_limit_exceptions)) is not None:
            return _timed_out(ctx, limit)
        return _fail(ctx, exc)
    except Exception as exc:
        if (cause := _sql_unreachable(exc)) is not None:
            # SQL went away under the job: a fault like the broker's, which the host may have outlived.
            return _fail(ctx, CesoError(f"database unreachable: {cause}", code="database_unreachable"))
        log.exception("job %s crashed", job.id)
        crash = CesoError(f"internal error: {type(exc).__name__}: {exc}", code="internal_error")
        finish_job(engine, job_id=job.id, attempt=ctx.attempt, state="failed", error=crash)
        return "failed"
    finally:
        ctx.stop_heartbeat()
    log.info("job %s %s", job.id, outcome)
    return outcome


def _raised_from(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The exception of ``kinds`` that ``exc`` is, or was raised from (its ``__cause__`` chain), or None."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while kinds and seen is not None and id(seen) not in visited:  # a chain can loop back on itself
        if isinstance(seen, kinds):
            return seen
        visited.add(id(seen))
        seen = seen.__cause__
    return None


def _timed_out(ctx: JobContext, exc: BaseException) -> str:
    """Record the job as failed by its time limit (``exc``: what the worker raised in it)."""
    job = ctx.job
    err = TimeoutExpiredError(
        f"job {job.id} exceeded its time limit ({type(exc).__name__})", code="time_limit"
    )
    finish_job(ctx.runtime.engine, job_id=job.id, attempt=ctx.attempt, state="failed", error=err)
    return "failed"


def _fail(ctx: JobContext, exc: CesoError) -> str:
    """Record ``exc`` as the job's failure; return the outcome.

    A fault of the machinery (broker, SQL, lock, connection: :func:`ceso.operations.reconcile.is_fault`)
    is first checked against the host: a job whose work is complete there ends ``succeeded`` with
    the result read from the host; otherwise its cleanup runs and the fault is recorded.
    """
    from ceso.operations.reconcile import is_fault, reconcile

    job = ctx.job
    if is_fault(exc):
        try:
            result = reconcile(ctx, exc)
        except ClaimLostError:
            log.warning("job %s: claim lost while reconciling with its host", job.id)
            return "claim_lost"
        if result is not None:
            log.info("job %s: %s, but its work is complete on the host", job.id, exc.message)
            try:
                return ctx.finish(result)
            except ClaimLostError:
                return "claim_lost"
        ctx.flush()  # what the reconciling read found, recorded before the failure
    finish_job(
        ctx.runtime.engine,
        job_id=job.id,
        attempt=ctx.attempt,
        state="failed",
        error=exc,
        result=pending_result(exc),
    )
    log.info("job %s failed: %s", job.id, exc.message)
    return "failed"
