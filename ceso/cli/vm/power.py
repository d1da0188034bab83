"""``ceso vm power``."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.vm.change_specs import PowerVm
from ceso.vm.power import POWER_ACTIONS


@click.command()
@spec_argument(PowerVm, "action", type=click.Choice(POWER_ACTIONS))
@spec_argument(PowerVm, "name")
@spec_options(PowerVm, "host", "force", "timeout_guest", timeout_guest={"metavar": "SECONDS"})
@job_options
@dispatch(PowerVm.parse)
@pass_app
def power(app: Application, /, spec: PowerVm, job: JobOptions) -> Any:
    """Power VM NAME on, off, shut its guest down, reboot it or reset it.

    Asking for the state the VM is already in (on, off, shutdown) succeeds
    without changing anything; reset and reboot need a powered-on VM.
    """
    from ceso.vm.lifecycle import power_request

    app.submit_spec(spec, power_request(app.runtime, spec, idempotency_key=job.idempotency_key), job)
