"""Submitting jobs: the outbox (SQL row first, then the queue message)."""

from __future__ import annotations

import logging

from sqlmodel import Session

from ceso.audit.jobs import submitted_event
from ceso.db.bounds import check_text
from ceso.db.models import TERMINAL_STATES, Job
from ceso.errors import TransientError
from ceso.hosts.registry import get_host
from ceso.jobs.kinds import get_kind
from ceso.jobs.publish import publish_job
from ceso.jobs.request import JobRequest
from ceso.jobs.store import create_job, mark_published
from ceso.runtime import Runtime
from ceso.security.gate import admit_job
from ceso.security.sealing import discard_sealed

__all__ = ["submit_job"]

log = logging.getLogger(__name__)


def submit_job(runtime: Runtime, request: JobRequest) -> tuple[Job, bool]:
    """Record the job, commit, then publish it; return ``(job, created)``.

    The row is committed before the message exists, so a worker never sees a
    message without its row. If publishing fails the job stays ``queued`` and
    unpublished: the outbox relay of the host's workers (:mod:`ceso.jobs.relay`)
    publishes it once Redis answers, and the error is raised (TransientError). Re-submitting an idempotency key
    returns the first job and publishes nothing new unless that job was never
    published. A caller who may not submit the job gets NotPermittedError
    (audited) before anything is written; secret params are sealed
    (:mod:`ceso.security.sealing`) and the job is audited as submitted.
    """
    get_kind(request.kind)
    if request.idempotency_key is not None:
        check_text(request.idempotency_key, Job, "idempotency_key", what="--idempotency-key")
    with Session(runtime.engine) as session:
        get_host(session, request.host)
    # The caller's identity, mode and guard rails (NotPermittedError, audited); secrets sealed.
    request, principal = admit_job(runtime, request)
    try:
        job, created = create_job(
            runtime.engine,
            kind=request.kind,
            host=request.host,
            target=request.target,
            params=request.params,
            actor=request.actor,
            idempotency_key=request.idempotency_key,
            max_attempts=runtime.settings.jobs.max_attempts,
            audit=lambda new: submitted_event(new, mode=principal.mode),  # commits with the row
        )
    except BaseException:
        discard_sealed(runtime, request.params)
        raise
    if not created and job.state in TERMINAL_STATES:
        discard_sealed(runtime, request.params)  # sealed again for a job that has already ended
    if created or (job.state == "queued" and job.published_at is None):
        try:
            publish_job(runtime.settings.redis_url, job_id=job.id, host=job.host)
        except TransientError:
            log.warning("job %s recorded but not published", job.id)
            raise
        mark_published(runtime.engine, job.id)
    return job, created
