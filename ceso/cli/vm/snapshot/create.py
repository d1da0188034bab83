"""``ceso vm snapshot create``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod

CREATE_PLAN = [
    "lock the VM; refuse a snapshot name it already has",
    "VirtualMachine.CreateSnapshot_Task (memory and quiesce as asked)",
]


@click.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@click.option("--description", default="", help="Free text kept with the snapshot.")
@click.option("--memory", is_flag=True, help="Include the running VM's memory.")
@click.option("--quiesce", is_flag=True, help="Quiesce the guest file systems first (needs VMware Tools).")
@job_options
@via_local_cesod
@pass_app
def create(
    app: Application,
    /,
    name: str,
    snapshot: str,
    host: str | None,
    description: str,
    memory: bool,
    quiesce: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Take snapshot SNAPSHOT of VM NAME (the name must be new on that VM)."""
    from ceso.vm.snapshot_requests import snapshot_create_request

    request = snapshot_create_request(
        app.runtime,
        name=name,
        snapshot=snapshot,
        description=description,
        memory=memory,
        quiesce=quiesce,
        host=host,
        idempotency_key=idempotency_key,
    )
    app.submit(request, wait=wait, timeout=timeout, plan=CREATE_PLAN)
