"""``ceso vm snapshot revert``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.each_vm import each_vm
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.vm.change_specs import RevertSnapshot

SPEC = "ceso.vm.change_specs:RevertSnapshot"


@click.command()
@spec_argument("name", nargs=-1)
@spec_argument("snapshot")
@spec_options(SPEC, host={})
@job_options
@each_vm()
@dispatch(SPEC)
@pass_app
def revert(app: Application, /, spec: RevertSnapshot, job: JobOptions) -> None:
    """Revert VM NAME to snapshot SNAPSHOT (changes since are lost; the VM takes the snapshot's power state)."""
    from ceso.vm.snapshot_requests import snapshot_revert_request

    app.submit_spec(
        spec, snapshot_revert_request(app.runtime, spec, idempotency_key=job.idempotency_key), job
    )
