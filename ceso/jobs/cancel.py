"""Cancelling a job on behalf of a caller: the permission check, the change and its audit records."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.audit.jobs import audit_finished
from ceso.audit.store import AuditEvent, record
from ceso.db.models import Job
from ceso.errors import NotPermittedError
from ceso.jobs.ids import parse_job_id
from ceso.jobs.store import get_job, request_cancel
from ceso.runtime import Runtime
from ceso.security.caller import current_caller
from ceso.security.gate import current_principal
from ceso.security.modes import ADMIN, allows

__all__ = ["cancel_job"]


def cancel_job(runtime: Runtime, job_id: str) -> Job:
    """Cancel job ``job_id`` (see :func:`ceso.jobs.store.request_cancel`) and audit it.

    Agents below admin may cancel only their own jobs (NotPermittedError,
    audited). A queued job cancelled here is audited as ``job.cancelled``
    at once; a running one when its worker stops it.
    """
    job_id = parse_job_id(job_id)
    principal = current_principal(runtime)
    with Session(runtime.engine) as session:
        before = get_job(session, job_id)
    where: dict[str, Any] = {
        "operation": "job.cancel",
        "job_id": job_id,
        "host": before.host,
        "vm": before.target,
    }
    limited = principal is not None and principal.is_agent and not allows(principal.mode, ADMIN)
    if limited and principal is not None and before.actor != principal.actor:
        exc = NotPermittedError(f"agent {principal.name} may cancel only its own jobs ({job_id} is not)")
        details = {"code": exc.code, "reason": exc.message}
        record(runtime.engine, AuditEvent("access.refused", outcome="refused", details=details, **where))
        raise exc
    job = request_cancel(runtime.engine, job_id)
    if (job.state, job.cancel_requested) == (before.state, before.cancel_requested):
        return job  # already ended, or asked before: nothing changed
    record(
        runtime.engine, AuditEvent("job.cancel_requested", details={"state_before": before.state}, **where)
    )
    if job.state == "cancelled":
        caller = current_caller()
        audit_finished(runtime, job, source=caller.source if caller else "cli")
    return job
