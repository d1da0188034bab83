"""The spec of ``host.ping`` (see :mod:`ceso.specs`): log in to a host and read its clock."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ceso.hosts.names import validate_host_name
from ceso.jobs.request import JobRequest
from ceso.specs import Spec

__all__ = ["PingHost", "ping_request"]


class PingHost(Spec):
    """``host.ping``: proves the whole job path to one host's worker."""

    kind = "host.ping"

    name: Annotated[str, AfterValidator(validate_host_name)] = Field(description="The host to ping.")


def ping_request(spec: PingHost, *, idempotency_key: str | None) -> JobRequest:
    """The job of ``spec`` (the host is checked when it is submitted)."""
    return JobRequest(
        kind=spec.kind, host=spec.name, params=spec.job_params(), idempotency_key=idempotency_key
    )
