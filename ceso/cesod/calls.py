"""What a cesod method sees (:class:`Call`), the method record, and job submission shared by job methods."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ceso.cesod.schema import Param, json_schema
from ceso.db.bounds import text_limit
from ceso.db.models import Job
from ceso.specs import Spec

if TYPE_CHECKING:
    from ceso.jobs.request import JobRequest
    from ceso.runtime import Runtime
    from ceso.security.principals import Principal

__all__ = ["JOB_PARAMS", "Call", "Method", "job_method", "submit_and_report", "wait_bounded"]


@dataclass(frozen=True)
class Call:
    """One authenticated call: the process runtime, the caller, its address."""

    runtime: Runtime
    principal: Principal
    client_addr: str | None


@dataclass(frozen=True)
class Method:
    """A cesod method: its name is an operation name (same as the CLI's command path).

    A method that submits a job has a ``spec`` (:mod:`ceso.specs`): its params are the spec's
    fields beside :data:`JOB_PARAMS` (then ``params`` is JOB_PARAMS), and its handler is called
    as ``handler(call, spec, job_params)``; any other method's as ``handler(call, params)``.
    """

    name: str
    summary: str
    params: dict[str, Param]
    handler: Callable[..., Any]
    spec: type[Spec] | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the method's params object (``system.describe``)."""
        own = json_schema(self.params)
        if self.spec is None:
            return own
        schema = self.spec.json_schema()
        schema["properties"] = {**schema["properties"], **own["properties"]}
        return schema


def job_method(name: str, summary: str, spec: type[Spec], handler: Callable[..., Any]) -> Method:
    """The method that submits ``spec``'s job: its fields and :data:`JOB_PARAMS` are the params."""
    return Method(name, summary, JOB_PARAMS, handler, spec=spec)


JOB_PARAMS: dict[str, Param] = {
    "wait": Param(
        "boolean", "Wait for the job to end before answering (bounded; see job.wait).", default=False
    ),
    "timeout": Param(
        "number",
        "With wait: answer after this many seconds at most; the job goes on.",
        minimum=0,
        maximum=3600,
    ),
    "idempotency_key": Param(
        "string",
        "Submitting the same key again returns the first job instead of a new one.",
        max_length=text_limit(Job, "idempotency_key"),
    ),
    "dry_run": Param("boolean", "Show what would be done; change nothing.", default=False),
}


def wait_bounded(call: Call, job_id: str, timeout: float | None) -> dict[str, Any]:
    """The job once it ended, or as it is after ``timeout`` (default 30 s, capped by ``cesod.job_wait_max_s``)."""
    from ceso.errors import TimeoutExpiredError
    from ceso.jobs.ids import parse_job_id
    from ceso.jobs.store import get_job, job_to_dict
    from ceso.jobs.wait import wait_for_job

    cap = call.runtime.settings.cesod.job_wait_max_s
    limit = min(cap, 30.0 if timeout is None else max(0.0, float(timeout)))
    job_id = parse_job_id(job_id)
    warnings: list[str] = []  # a queued job whose host no live worker serves
    try:
        job = wait_for_job(
            call.runtime.engine,
            job_id,
            timeout=limit,
            redis_url=call.runtime.settings.redis_url,
            on_no_worker=warnings.append,
        )
    except TimeoutExpiredError:
        from sqlmodel import Session

        with Session(call.runtime.engine) as session:
            job = get_job(session, job_id)
    return {**job_to_dict(job), **({"warnings": warnings} if warnings else {})}


def submit_and_report(
    call: Call,
    spec: Spec,
    request: JobRequest,
    params: dict[str, Any],
    *,
    documents: dict[str, str] | None = None,
    details: list[str] | None = None,
) -> dict[str, Any]:
    """Submit (or plan, with ``dry_run``) like the CLI's ``--json`` does; the job object, or the
    plan of the route the job's host would take (:func:`ceso.plans.plan_for`)."""
    from ceso.jobs.store import job_to_dict
    from ceso.jobs.submit import submit_job
    from ceso.plans import dry_run_plan
    from ceso.security.redact import redact

    if params.get("dry_run"):
        from ceso.security.gate import check_job

        check_job(call.runtime, request)  # a plan the caller could not run is refused, as the job would be
        return {
            "dry_run": True,
            "kind": request.kind,
            "host": request.host,
            "target": request.target,
            "params": redact(request.params),
            "plan": dry_run_plan(call.runtime, spec, request.host, details),
            "cloudinit": documents,
        }
    started = time.monotonic()
    job, _ = submit_job(call.runtime, request)
    if not params.get("wait"):
        from ceso.jobs.liveness import unserved_warning

        warning = unserved_warning(call.runtime, job.host) if job.state == "queued" else None
        return {**job_to_dict(job), **({"warnings": [warning]} if warning else {})}
    timeout = params.get("timeout")
    left = None if timeout is None else max(0.0, float(timeout) - (time.monotonic() - started))
    return wait_bounded(call, job.id, left)
