"""The audit records of a job's life: submitted, claimed, each step, and its outcome.

All are guarded: a job never fails because its audit record could not be
written; the failure is logged. The claim's record is written inside the
claim's transaction (by the worker, :class:`ceso.security.worker.ClaimCheck`),
each step's with the row write that records it, and the outcome inside the
transaction that ends the job (:func:`audit_finished_in`, called by
:func:`ceso.jobs.store.finish_job`), so it cannot be lost to a worker killed
right after.
Actor, mode and source come from the bound caller (the worker binds the
job's actor while the job runs) unless given.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ceso.audit.store import AuditEvent, record, record_in
from ceso.security.caller import current_caller

if TYPE_CHECKING:
    from ceso.db.models import Job
    from ceso.runtime import Runtime

__all__ = [
    "FINISH_EVENTS",
    "audit_claimed",
    "audit_finished",
    "audit_finished_in",
    "claimed_event",
    "submitted_event",
]

FINISH_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}
_OUTCOME = {"succeeded": "ok", "failed": "failed", "cancelled": "cancelled"}

log = logging.getLogger(__name__)


def _where(job: Job) -> dict[str, Any]:
    return {"operation": job.kind, "job_id": job.id, "host": job.host, "vm": job.target}


def submitted_event(job: Job, *, mode: str | None = None) -> AuditEvent:
    """``job.submitted``: the stored (sealed, redacted) params, by the job's actor."""
    details = {"params": job.params, "idempotency_key": job.idempotency_key}
    return AuditEvent("job.submitted", actor=job.actor, mode=mode, details=details, **_where(job))


def claimed_event(job: Job, *, mode: str | None = None) -> AuditEvent:
    """``job.claimed``: which worker, which attempt (appended in the claim's transaction by the worker)."""
    details = {"worker": job.worker, "attempt": job.attempts}
    return AuditEvent(
        "job.claimed", actor=job.actor, mode=mode, source="worker", details=details, **_where(job)
    )


def audit_claimed(runtime: Runtime, job: Job, *, mode: str | None = None) -> None:
    """:func:`claimed_event`, appended on its own."""
    record(runtime.engine, claimed_event(job, mode=mode))


def step_event(job: Job, step: dict[str, Any]) -> AuditEvent:
    """``job.step``: the step as recorded on the job, with the exact vSphere calls or SSH commands."""
    outcome = {"succeeded": "ok"}.get(str(step.get("state")), "failed")
    return AuditEvent(
        "job.step", outcome=outcome, actor=job.actor, source="worker", details=step, **_where(job)
    )


def _finished_event(job: Job, source: str) -> AuditEvent | None:
    event = FINISH_EVENTS.get(job.state)
    if event is None:
        return None
    duration = None
    if job.started_at is not None and job.finished_at is not None:
        duration = round((job.finished_at - job.started_at).total_seconds(), 3)
    details: dict[str, Any] = {"attempts": job.attempts, "duration_s": duration}
    if job.error_code:
        details["error"] = {"code": job.error_code, "message": job.error_message}
    if job.result is not None:
        details["result"] = job.result
    return AuditEvent(
        event, outcome=_OUTCOME[job.state], actor=job.actor, source=source, details=details, **_where(job)
    )


def audit_finished(runtime: Runtime, job: Job, *, source: str = "worker") -> None:
    """``job.succeeded``/``job.failed``/``job.cancelled`` with result or error and duration."""
    event = _finished_event(job, source)
    if event is not None:
        record(runtime.engine, event)


def audit_finished_in(conn: sa.Connection, job: Job, *, guarded: bool = True) -> None:
    """The outcome record of ``job`` (its row as the outcome left it), written in the transaction that
    ends it.

    So a worker killed right after the job ended cannot leave the outcome
    unaudited. Never raises when ``guarded`` (see :func:`ceso.audit.store.record_in`).
    """
    caller = current_caller()
    event = _finished_event(job, caller.source if caller else "worker")
    if event is not None:
        record_in(conn, event, guarded=guarded)
