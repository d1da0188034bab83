"""The worker's side of the sandbox: re-check a claimed job's actor, audit the claim, bind the actor.

:class:`ClaimCheck` runs inside the claim's transaction: it resolves the
job's actor and gives the ``job.claimed`` record, which commits with the
claim. :func:`begin_claimed` runs right after the claim and before the
handler; :func:`end_claimed` runs after the delivery whatever happened. None
lets bookkeeping break the job: audit writes are guarded, and a failure of
the check itself (SQL down) propagates so the job is *not* run.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING

from sqlmodel import Session

from ceso.audit.jobs import audit_claimed, claimed_event
from ceso.db.models import TERMINAL_STATES, Job
from ceso.errors import NotPermittedError
from ceso.security.caller import Caller, bind_caller, reset_caller
from ceso.security.gate import refuse_claimed_job
from ceso.security.principals import Principal, resolve_actor

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from ceso.audit.store import AuditEvent
    from ceso.runtime import Runtime

__all__ = ["ClaimCheck", "begin_claimed", "end_claimed"]

log = logging.getLogger(__name__)

CallerToken = contextvars.Token[Caller | None]


def _resolve(bind: Engine | sa.Connection, runtime: Runtime, actor: str) -> Principal | NotPermittedError:
    try:
        return resolve_actor(bind, runtime.settings, actor)
    except NotPermittedError as exc:
        return exc


def _mode(principal: Principal | NotPermittedError) -> str | None:
    return principal.mode if isinstance(principal, Principal) else None


class ClaimCheck:
    """The ``audit`` hook of :func:`ceso.jobs.store.claim_job`: resolves the job's actor *now*, on the
    claim's connection, and returns the ``job.claimed`` record (with the actor's mode) that commits
    with the claim. :func:`begin_claimed` then checks that resolution instead of making another.

    If the resolution fails (SQL error), ``resolved`` stays None and the claim commits without its
    record; :func:`begin_claimed` then resolves and records the claim apart, as it always did.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.resolved: Principal | NotPermittedError | None = None

    def __call__(self, conn: sa.Connection, job: Job) -> AuditEvent:
        resolved = _resolve(conn, self.runtime, job.actor)
        event = claimed_event(job, mode=_mode(resolved))
        self.resolved = resolved
        return event


def begin_claimed(
    runtime: Runtime, job: Job, claim: ClaimCheck | None = None
) -> tuple[CallerToken | None, bool]:
    """Audit the claim, then re-check the job's actor *now*; return (caller binding, refused).

    With ``claim`` (the hook given to ``claim_job``), the actor was resolved and
    the claim audited in the claim's transaction; without it, or if that
    resolution failed, both happen here. A refused job is failed with code
    ``not_permitted`` (and audited as ``job.refused``); otherwise the job's
    actor is bound as the caller for the run, so its steps are audited under it.
    """
    from ceso.jobs.store import finish_job

    principal = claim.resolved if claim is not None else None
    if principal is None:
        principal = _resolve(runtime.engine, runtime, job.actor)
        audit_claimed(runtime, job, mode=_mode(principal))
    refusal, principal_now = refuse_claimed_job(runtime, job, principal)
    if refusal is not None:
        finish_job(runtime.engine, job_id=job.id, attempt=job.attempts, state="failed", error=refusal)
        log.warning("%s", refusal.message)
        return None, True
    return bind_caller(Caller(principal_now, source="worker")), False


def end_claimed(runtime: Runtime, job: Job, caller: CallerToken | None) -> None:
    """Unbind the caller; if this delivery ended the job, drop its sealed params.

    (The outcome's audit record was written with the outcome, by ``finish_job``.)
    """
    from ceso.security.sealing import discard_sealed

    if caller is not None:
        reset_caller(caller)
    try:
        with Session(runtime.engine) as session:
            row = session.get(Job, job.id)
        if row is None or row.state not in TERMINAL_STATES or row.attempts != job.attempts:
            return  # still running elsewhere, or another delivery took over and will clean up
        discard_sealed(runtime, row.params)
    except Exception:
        log.warning("sealed params of job %s not discarded", job.id, exc_info=True)
