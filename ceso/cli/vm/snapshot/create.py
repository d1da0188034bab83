"""``ceso vm snapshot create``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.vm.change_specs import CreateSnapshot


@click.command()
@spec_argument(CreateSnapshot, "name")
@spec_argument(CreateSnapshot, "snapshot")
@spec_options(CreateSnapshot, "host", "description", "memory", "quiesce")
@job_options
@dispatch(CreateSnapshot.parse)
@pass_app
def create(app: Application, /, spec: CreateSnapshot, job: JobOptions) -> None:
    """Take snapshot SNAPSHOT of VM NAME (the name must be new on that VM)."""
    from ceso.vm.snapshot_requests import snapshot_create_request

    app.submit_spec(
        spec, snapshot_create_request(app.runtime, spec, idempotency_key=job.idempotency_key), job
    )
