"""``ceso vm snapshot delete``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod

DELETE_PLAN = [
    "lock the VM; find the one snapshot of that name (refuse an ambiguous name)",
    "VirtualMachineSnapshot.RemoveSnapshot_Task (removeChildren with --children)",
]


@click.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@click.option("--children", is_flag=True, help="Delete the snapshots below it too.")
@job_options
@via_local_cesod
@pass_app
def delete(
    app: Application,
    /,
    name: str,
    snapshot: str,
    host: str | None,
    children: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Delete snapshot SNAPSHOT of VM NAME; its changes are kept in the VM (the disks are consolidated)."""
    from ceso.vm.snapshot_requests import snapshot_delete_request

    request = snapshot_delete_request(
        app.runtime,
        name=name,
        snapshot=snapshot,
        children=children,
        host=host,
        idempotency_key=idempotency_key,
    )
    app.submit(request, wait=wait, timeout=timeout, plan=DELETE_PLAN)
