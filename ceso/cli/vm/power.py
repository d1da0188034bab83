"""``ceso vm power``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.each_vm import each_vm
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.vm.power import POWER_ACTIONS

if TYPE_CHECKING:
    from ceso.vm.change_specs import PowerVm

SPEC = "ceso.vm.change_specs:PowerVm"


@click.command()
@spec_argument("action", type=click.Choice(POWER_ACTIONS))
@spec_argument("name", nargs=-1)
@spec_options(SPEC, host={}, force={"is_flag": True}, timeout_guest={"type": float, "metavar": "SECONDS"})
@job_options
@each_vm()
@dispatch(SPEC)
@pass_app
def power(app: Application, /, spec: PowerVm, job: JobOptions) -> None:
    """Power VM NAME on, off, shut its guest down, reboot it or reset it.

    Asking for the state the VM is already in (on, off, shutdown) succeeds
    without changing anything; reset and reboot need a powered-on VM.
    """
    from ceso.vm.lifecycle import power_request

    app.submit_spec(spec, power_request(app.runtime, spec, idempotency_key=job.idempotency_key), job)
