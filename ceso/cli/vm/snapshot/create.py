"""``ceso vm snapshot create``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.each_vm import each_vm
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.vm.change_specs import CreateSnapshot

SPEC = "ceso.vm.change_specs:CreateSnapshot"


@click.command()
@spec_argument("name", nargs=-1)
@spec_argument("snapshot")
@spec_options(SPEC, host={}, description={}, memory={"is_flag": True}, quiesce={"is_flag": True})
@job_options
@each_vm()
@dispatch(SPEC)
@pass_app
def create(app: Application, /, spec: CreateSnapshot, job: JobOptions) -> None:
    """Take snapshot SNAPSHOT of VM NAME (the name must be new on that VM)."""
    from ceso.vm.snapshot_requests import snapshot_create_request

    app.submit_spec(
        spec, snapshot_create_request(app.runtime, spec, idempotency_key=job.idempotency_key), job
    )
