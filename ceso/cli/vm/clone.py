"""``ceso vm clone``."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod
from ceso.cli.vm_options import guest_options, guest_options_from, hardware_options, hardware_options_from

CLONE_PLAN = [
    "lock the source and the new VM name, and a slot on the datastore",
    "with --hot: VirtualMachine.CreateSnapshot_Task on the source (no memory), removed afterwards, always",
    "with --shutdown-source: VirtualMachine.ShutdownGuest, power back on afterwards",
    "FileManager.MakeDirectory [ds] NAME",
    "VirtualDiskManager.CopyVirtualDisk_Task for each source disk (thin, on the host)",
    "Folder.CreateVM_Task with the source's hardware, a new BIOS UUID, new MACs and guestinfo",
    "FileManager.CopyDatastoreFile_Task of the source's NVRAM over the new VM's (EFI sources)",
    "VirtualMachine.PowerOnVM_Task (unless --no-power-on)",
]


@click.command()
@click.argument("source")
@click.argument("name")
@click.option("--host", help="Host of the source VM (optional when its name is unique).")
@click.option("--hot", is_flag=True, help="Clone a running source through a temporary snapshot.")
@click.option(
    "--shutdown-source", is_flag=True, help="Shut a running source down for the copy and power it back on."
)
@hardware_options
@guest_options
@job_options
@via_local_cesod
@pass_app
def clone(
    app: Application,
    /,
    source: str,
    name: str,
    host: str | None,
    hot: bool,
    shutdown_source: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
    **kw: Any,
) -> None:
    """Clone SOURCE to NAME with a new UUID, MACs, instance-id and host name; SOURCE is not changed.

    Cold by default: SOURCE must be powered off (or use --shutdown-source or --hot).
    """
    from ceso.vm.requests import clone_request

    request, documents = clone_request(
        app.runtime,
        source=source,
        name=name,
        host=host,
        hw=hardware_options_from(kw),
        guest=guest_options_from(kw),
        hot=hot,
        shutdown_source=shutdown_source,
        idempotency_key=idempotency_key,
    )
    if app.dry_run:
        app.show_documents(documents)
    plan = CLONE_PLAN
    if app.dry_run:
        from ceso.routes import route_of
        from ceso.ssh.plans import SSH_CLONE_PLAN

        plan = SSH_CLONE_PLAN if route_of(app.runtime, request.host) == "ssh" else CLONE_PLAN
    app.submit(request, wait=wait, timeout=timeout, plan=plan)
