"""``ceso vm snapshot revert``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod

REVERT_PLAN = [
    "lock the VM; find the one snapshot of that name (refuse an ambiguous name)",
    "VirtualMachineSnapshot.RevertToSnapshot_Task",
]


@click.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@job_options
@via_local_cesod
@pass_app
def revert(
    app: Application,
    /,
    name: str,
    snapshot: str,
    host: str | None,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Revert VM NAME to snapshot SNAPSHOT (changes since are lost; the VM takes the snapshot's power state)."""
    from ceso.vm.snapshot_requests import snapshot_revert_request

    request = snapshot_revert_request(
        app.runtime, name=name, snapshot=snapshot, host=host, idempotency_key=idempotency_key
    )
    app.submit(request, wait=wait, timeout=timeout, plan=REVERT_PLAN)
