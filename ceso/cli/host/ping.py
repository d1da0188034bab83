"""``ceso host ping``: a job that logs in and reads the host's clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.hosts.specs import PingHost


@click.command()
@spec_argument("name")
@job_options
@dispatch("ceso.hosts.specs:PingHost")
@pass_app
def ping(app: Application, /, spec: PingHost, job: JobOptions) -> None:
    """Queue a host.ping job on NAME's worker: log in and read the host's clock."""
    from ceso.hosts.specs import ping_request

    app.submit_spec(spec, ping_request(spec, idempotency_key=job.idempotency_key), job)
