"""``ceso host ping``: a job that logs in and reads the host's clock."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options


@click.command()
@click.argument("name")
@job_options
@pass_app
def ping(app: Application, name: str, wait: bool, timeout: float | None, idempotency_key: str | None) -> None:
    """Queue a host.ping job on NAME's worker: log in and read the host's clock."""
    from ceso.hosts.names import validate_host_name
    from ceso.jobs.request import JobRequest

    request = JobRequest(kind="host.ping", host=validate_host_name(name), idempotency_key=idempotency_key)
    app.submit(
        request,
        wait=wait,
        timeout=timeout,
        plan=["SessionManager.Login (pooled session)", "ServiceInstance.CurrentTime"],
    )
