"""The checks: may this principal do this operation, with these params, now?

Three places ask, and all three audit a refusal:

* :func:`authorize` — any operation, by mode (the CLI before a command runs,
  cesod before a method runs); reads included;
* :func:`admit_job` — at submit: the actor is the authenticated caller, the
  mode allows the job's kind, the guard rails hold; then secret params are
  sealed and the rest redacted before the row is written;
* :func:`refuse_claimed_job` — in the worker, after the claim and before the
  handler: the job's actor is re-resolved from SQL *now* (revoked agents,
  expired or revoked promotions, tightened rails all count), so a job that
  was put on the queue by anyone else, or that waited past its actor's
  promotion, never runs.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from ceso.audit.store import AuditEvent, record
from ceso.constants import ENV_AGENT_TOKEN
from ceso.errors import NotPermittedError
from ceso.security.caller import current_caller
from ceso.security.modes import allows
from ceso.security.operations import Operation, get_operation
from ceso.security.principals import Principal, authenticate_token, resolve_actor

if TYPE_CHECKING:
    from ceso.db.models import Job
    from ceso.jobs.request import JobRequest
    from ceso.runtime import Runtime

__all__ = [
    "ENV_AGENT_TOKEN",
    "admit_job",
    "authorize",
    "check_job",
    "check_mode",
    "current_principal",
    "refuse_claimed_job",
]

DEFAULT_ACTOR = "operator"  # JobRequest's default: "whoever is calling"


def job_operation(kind: str, params: dict[str, Any]) -> Operation:
    """The operation a job amounts to: its kind's, except a restore over the original VM (admin)."""
    if kind == "backup.restore" and params.get("in_place"):
        return get_operation("backup.restore_in_place")
    return get_operation(kind)


def check_mode(principal: Principal, op: Operation) -> None:
    """NotPermittedError unless ``principal``'s current mode allows ``op`` (and, if operator-only, is no agent)."""
    if op.operator_only and principal.is_agent:
        raise NotPermittedError(
            f"agent {principal.name} may not {op.name}: only the local operator may, in any mode"
        )
    if allows(principal.mode, op.mode):
        return
    message = f"{principal.kind} {principal.name} (mode {principal.mode}) may not {op.name}: it needs mode {op.mode}"
    if not op.known:
        message += " (an operation missing from ceso's operation table is admin-only)"
    elif principal.is_agent:
        message += f"; ask for it with `ceso agent request-promotion --mode {op.mode} --for 30m --reason ...`"
    raise NotPermittedError(message)


def _refused(
    runtime: Runtime, principal: Principal | None, op: str, exc: NotPermittedError, **where: Any
) -> None:
    actor = where.pop("actor", None)
    record(
        runtime.engine,
        AuditEvent(
            where.pop("event", "access.refused"),
            outcome="refused",
            operation=op,
            actor=actor or (principal.actor if principal else None),
            mode=principal.mode if principal else None,
            details={"code": exc.code, "reason": exc.message, **where.pop("details", {})},
            **where,
        ),
    )


def authorize(runtime: Runtime, principal: Principal, operation: str, **where: Any) -> Operation:
    """The operation if ``principal`` may perform it; else audit the refusal and raise NotPermittedError.

    ``where`` (host, vm, job_id, details) goes on the audit record.
    """
    op = get_operation(operation)
    try:
        check_mode(principal, op)
    except NotPermittedError as exc:
        _refused(runtime, principal, op.name, exc, **where)
        raise
    return op


def current_principal(runtime: Runtime) -> Principal | None:
    """The bound caller's principal; else the agent of ``CESO_AGENT_TOKEN``; else None (trusted library use)."""
    caller = current_caller()
    if caller is not None and caller.principal is not None:
        return caller.principal
    token = os.environ.get(ENV_AGENT_TOKEN)
    if token:
        return authenticate_token(runtime.engine, token)
    return None


def check_job(runtime: Runtime, request: JobRequest) -> Principal:
    """The principal submitting ``request``, after checking its mode and guard rails (nothing stored).

    Raises NotPermittedError (audited) when it may not submit it. ``--dry-run``
    uses this alone; :func:`admit_job` before storing a job.
    """
    from ceso.security.guardrails import check_rails

    principal = current_principal(runtime)
    if principal is None:
        principal = resolve_actor(runtime.engine, runtime.settings, request.actor)
    elif request.actor not in (DEFAULT_ACTOR, principal.actor):
        exc = NotPermittedError(f"{principal.actor} cannot submit a job as {request.actor}")
        _refused(runtime, principal, request.kind, exc, host=request.host, vm=request.target)
        raise exc
    try:
        check_mode(principal, job_operation(request.kind, request.params))
        check_rails(
            runtime.engine,
            runtime.settings.security.rails_for(principal.mode),
            principal,
            kind=request.kind,
            host=request.host,
            target=request.target,
            params=request.params,
        )
    except NotPermittedError as exc:
        _refused(runtime, principal, request.kind, exc, host=request.host, vm=request.target)
        raise
    return principal


def admit_job(runtime: Runtime, request: JobRequest) -> tuple[JobRequest, Principal]:
    """The request as it may be stored (actor set, secrets sealed, the rest redacted) and its principal.

    Raises NotPermittedError (audited) when the caller may not submit it;
    nothing is sealed then.
    """
    from ceso.security.redact import redact
    from ceso.security.sealing import seal_params

    principal = check_job(runtime, request)
    params = seal_params(runtime, request.params, idempotency_key=request.idempotency_key)
    return dataclasses.replace(request, actor=principal.actor, params=redact(params)), principal


def refuse_claimed_job(
    runtime: Runtime, job: Job, resolved: Principal | NotPermittedError | None = None
) -> tuple[NotPermittedError | None, Principal | None]:
    """Why the claimed ``job`` must not run now (None if it may), and its actor's principal if known.

    ``resolved`` is the job's actor as just resolved (to spare a second
    lookup); the refusal is audited as ``job.refused``; the caller fails the job.
    """
    from ceso.security.guardrails import check_rails

    principal: Principal | None = None
    try:
        if isinstance(resolved, NotPermittedError):
            raise resolved
        principal = resolved or resolve_actor(runtime.engine, runtime.settings, job.actor)
        check_mode(principal, job_operation(job.kind, job.params))
        check_rails(
            runtime.engine,
            runtime.settings.security.rails_for(principal.mode),
            principal,
            kind=job.kind,
            host=job.host,
            target=job.target,
            params=job.params,
        )
    except NotPermittedError as exc:
        refusal = NotPermittedError(f"job {job.id} refused when claimed: {exc.message}", code="not_permitted")
        _refused(
            runtime,
            principal,
            job.kind,
            refusal,
            event="job.refused",
            actor=None if principal else job.actor,
            source="worker",
            job_id=job.id,
            host=job.host,
            vm=job.target,
            details={"rule": exc.code},
        )
        return refusal, principal
    return None, principal
