"""``ceso vm power``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod
from ceso.vm.power import DEFAULT_GUEST_TIMEOUT_S, POWER_ACTIONS  # light: imports only ceso.errors

PLANS = {
    "on": ["VirtualMachine.PowerOnVM_Task (nothing if already poweredOn)"],
    "off": ["VirtualMachine.PowerOffVM_Task (nothing if already poweredOff)"],
    "reset": ["VirtualMachine.ResetVM_Task (needs a powered-on VM)"],
    "reboot": ["VirtualMachine.RebootGuest (needs VMware Tools in the guest)"],
    "shutdown": [
        "VirtualMachine.ShutdownGuest, then wait for poweredOff up to --timeout-guest",
        "with --force: VirtualMachine.PowerOffVM_Task if the guest did not stop",
    ],
}


@click.command()
@click.argument("action", type=click.Choice(POWER_ACTIONS))
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@click.option("--force", is_flag=True, help="shutdown: power off if the guest does not stop in time.")
@click.option(
    "--timeout-guest",
    type=float,
    default=DEFAULT_GUEST_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="shutdown: how long to wait for the guest to power off.",
)
@job_options
@via_local_cesod
@pass_app
def power(
    app: Application,
    /,
    action: str,
    name: str,
    host: str | None,
    force: bool,
    timeout_guest: float,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Power VM NAME on, off, shut its guest down, reboot it or reset it.

    Asking for the state the VM is already in (on, off, shutdown) succeeds
    without changing anything; reset and reboot need a powered-on VM.
    """
    from ceso.vm.lifecycle import power_request

    request = power_request(
        app.runtime,
        action=action,
        name=name,
        host=host,
        force=force,
        timeout_guest_s=timeout_guest,
        idempotency_key=idempotency_key,
    )
    plan = ["lock the VM; check its power state again", *PLANS[action]]
    app.submit(request, wait=wait, timeout=timeout, plan=plan)
