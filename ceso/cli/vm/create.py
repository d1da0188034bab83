"""``ceso vm create``."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod
from ceso.cli.vm_options import guest_options, guest_options_from, hardware_options, hardware_options_from

CREATE_PLAN = [
    "lock the new VM name and a slot on the datastore",
    "FileManager.MakeDirectory [ds] NAME",
    "VirtualDiskManager.CopyVirtualDisk_Task for each template disk (thin, on the host)",
    "Folder.CreateVM_Task with the template's hardware, a new BIOS UUID, new MACs and guestinfo",
    "FileManager.CopyDatastoreFile_Task of the template's NVRAM over the new VM's (EFI templates)",
    "VirtualMachine.ReconfigVM_Task to grow the disk (only with --disk)",
    "VirtualMachine.PowerOnVM_Task (unless --no-power-on)",
]


@click.command()
@click.argument("name")
@click.option("--template", required=True, help="Registered template to copy (see `ceso template list`).")
@click.option("--host", help="Host of the template (optional when the template name is unique).")
@click.option("--force", is_flag=True, help="Use a template that failed validation.")
@hardware_options
@guest_options
@job_options
@via_local_cesod
@pass_app
def create(
    app: Application,
    /,
    name: str,
    template: str,
    host: str | None,
    force: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
    **kw: Any,
) -> None:
    """Create VM NAME from a template: disks copied on the host, a new identity, cloud-init network.

    The guest gets a fresh instance-id, its host name and, on its first NIC
    (matched by MAC), --ip/--gateway, --ip6/--gateway6 or DHCP.
    """
    from ceso.vm.requests import create_request

    request, documents = create_request(
        app.runtime,
        name=name,
        template=template,
        host=host,
        hw=hardware_options_from(kw),
        guest=guest_options_from(kw),
        force=force,
        idempotency_key=idempotency_key,
        check_host=True,
    )
    if app.dry_run:
        app.show_documents(documents)
    plan = CREATE_PLAN
    if app.dry_run:
        from ceso.routes import route_of
        from ceso.ssh.plans import SSH_CREATE_PLAN

        plan = SSH_CREATE_PLAN if route_of(app.runtime, request.host) == "ssh" else CREATE_PLAN
    app.submit(request, wait=wait, timeout=timeout, plan=plan)
