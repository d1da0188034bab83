"""``ceso vm snapshot delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.each_vm import each_vm
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.vm.change_specs import DeleteSnapshot

SPEC = "ceso.vm.change_specs:DeleteSnapshot"


@click.command()
@spec_argument("name", nargs=-1)
@spec_argument("snapshot")
@spec_options(SPEC, host={}, children={"is_flag": True})
@job_options
@each_vm()
@dispatch(SPEC)
@pass_app
def delete(app: Application, /, spec: DeleteSnapshot, job: JobOptions) -> None:
    """Delete snapshot SNAPSHOT of VM NAME; its changes are kept in the VM (the disks are consolidated)."""
    from ceso.vm.snapshot_requests import snapshot_delete_request

    app.submit_spec(
        spec, snapshot_delete_request(app.runtime, spec, idempotency_key=job.idempotency_key), job
    )
