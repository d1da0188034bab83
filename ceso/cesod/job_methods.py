"""cesod's job, host, template and agent methods (same shapes as the CLI's ``--json`` output)."""

from __future__ import annotations

from typing import Any

from ceso.cesod.calls import Call, Method, job_method, submit_and_report, wait_bounded
from ceso.cesod.schema import Param
from ceso.constants import JOB_LIST_MAX
from ceso.hosts.specs import PingHost
from ceso.security.promotions import MAX_REASON

__all__ = ["JOB_METHODS"]

S, INT, N = "string", "integer", "number"
STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def job_status(call: Call, p: dict[str, Any]) -> Any:
    from sqlmodel import Session

    from ceso.jobs.lookup import expand_job_id
    from ceso.jobs.store import get_job, job_to_dict

    job_id = expand_job_id(call.runtime.engine, p["id"])  # a whole id or a unique prefix, as in the CLI
    with Session(call.runtime.engine) as session:
        return job_to_dict(get_job(session, job_id))


def job_wait(call: Call, p: dict[str, Any]) -> Any:
    from ceso.jobs.lookup import expand_job_id

    return wait_bounded(call, expand_job_id(call.runtime.engine, p["id"]), p["timeout"])


def job_list(call: Call, p: dict[str, Any]) -> Any:
    from sqlmodel import Session

    from ceso.jobs.store import job_to_dict, list_jobs

    with Session(call.runtime.engine) as session:
        return [
            job_to_dict(j) for j in list_jobs(session, host=p["host"], state=p["state"], limit=p["limit"])
        ]


def job_cancel(call: Call, p: dict[str, Any]) -> Any:
    from ceso.jobs.cancel import cancel_job
    from ceso.jobs.lookup import expand_job_id
    from ceso.jobs.store import job_to_dict

    return job_to_dict(cancel_job(call.runtime, expand_job_id(call.runtime.engine, p["id"])))


def host_ping(call: Call, spec: PingHost, p: dict[str, Any]) -> Any:
    from ceso.hosts.specs import ping_request

    return submit_and_report(call, spec, ping_request(spec, idempotency_key=p["idempotency_key"]), p)


def host_list(call: Call, p: dict[str, Any]) -> Any:
    from sqlmodel import Session

    from ceso.hosts.registry import host_to_dict, list_hosts

    with Session(call.runtime.engine) as session:
        return [host_to_dict(h) for h in list_hosts(session)]


def template_list(call: Call, p: dict[str, Any]) -> Any:
    from sqlmodel import Session

    from ceso.vm.templates import list_templates, template_to_dict

    with Session(call.runtime.engine) as session:
        return [template_to_dict(t) for t in list_templates(session, p["host"])]


def request_promotion(call: Call, p: dict[str, Any]) -> Any:
    from ceso.security.durations import parse_duration
    from ceso.security.promotions import promotion_to_dict
    from ceso.security.promotions import request_promotion as request

    seconds = parse_duration(p["for"]) if p["for"] else None
    promo = request(call.runtime, call.principal, mode=p["mode"], seconds=seconds, reason=p["reason"])
    return promotion_to_dict(promo)


_ID = {"id": Param(S, "The job's id, or a unique prefix of it (at least 6 characters).", required=True)}

JOB_METHODS = [
    Method("job.status", "One job: state, progress, steps, result or error.", _ID, job_status),
    Method(
        "job.wait",
        "Long-poll: answer when the job ends, or after timeout with the job as it is then.",
        {
            **_ID,
            "timeout": Param(
                N, "Seconds to wait (default 30, capped by the server).", minimum=0, maximum=3600
            ),
        },
        job_wait,
    ),
    Method(
        "job.list",
        "Jobs, newest first.",
        {
            "host": Param(S, "Only jobs of this host."),
            "state": Param(S, "Only jobs in this state.", enum=STATES),
            "limit": Param(INT, "At most this many.", default=50, minimum=1, maximum=JOB_LIST_MAX),
        },
        job_list,
    ),
    Method("job.cancel", "Cancel a job: at once if queued, at its next step if running.", _ID, job_cancel),
    Method("host.list", "Registered hosts.", {}, host_list),
    job_method("host.ping", "Log in to a host and read its clock (a job).", PingHost, host_ping),
    Method(
        "template.list",
        "Templates and their validation.",
        {"host": Param(S, "Only this host.")},
        template_list,
    ),
    Method(
        "agent.request_promotion",
        "Ask an operator for a higher mode for a while.",
        {
            "mode": Param(S, "The mode wanted.", required=True, enum=("standard", "admin")),
            "for": Param(S, "How long, e.g. 30m or 2h (default: configured)."),
            "reason": Param(
                S, "What it is for (shown to the operator).", required=True, max_length=MAX_REASON
            ),
        },
        request_promotion,
    ),
]
