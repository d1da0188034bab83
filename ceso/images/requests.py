"""The request of a ``template.import`` job: the host is known and the template name is free.

The source itself is read by the worker (a local path names a file on the worker's machine),
which refuses an unsupported package before it makes anything.
"""

from __future__ import annotations

from sqlmodel import Session, select

from ceso.db.models import Template
from ceso.errors import ConflictError
from ceso.hosts.registry import get_host
from ceso.images.specs import ImportTemplate
from ceso.jobs.request import JobRequest
from ceso.runtime import Runtime

__all__ = ["import_request"]


def import_request(runtime: Runtime, spec: ImportTemplate, *, idempotency_key: str | None) -> JobRequest:
    """A validated ``template.import`` request; NotFoundError for an unknown host, ConflictError
    for a template name already registered there."""
    with Session(runtime.engine) as session:
        get_host(session, spec.host)
        taken = session.exec(
            select(Template).where(Template.name == spec.name, Template.host == spec.host)
        ).first()
    if taken is not None:
        raise ConflictError(f"template {spec.name!r} is already registered on host {spec.host}")
    return JobRequest(
        kind=spec.kind,
        host=spec.host,
        target=spec.name,
        params=spec.job_params(),
        idempotency_key=idempotency_key,
    )
