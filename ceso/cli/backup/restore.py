"""``ceso backup restore``."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod
from ceso.cli.vm_options import guest_options, guest_options_from

RESTORE_PLAN = [
    "read the manifest and check it against the catalog",
    "refuse if the name is taken or the datastore lacks space (nothing written yet)",
    "lock the new name and a slot on the datastore; FileManager.MakeDirectory [ds] NAME",
    "stream each disk file back over /folder (decrypt, decompress, sha256 checked)",
    "Folder.CreateVM_Task with the backed-up hardware, a new BIOS UUID, new MACs and new guestinfo",
    "restore the NVRAM; VirtualMachine.PowerOnVM_Task (unless --no-power-on)",
]


@click.command()
@click.argument("backup_id")
@click.option("--as", "name", help="Name of the new VM.")
@click.option(
    "--in-place",
    is_flag=True,
    help="Overwrite the disks of the original, powered-off VM (keeps its identity).",
)
@click.option("--yes", is_flag=True, help="With --in-place: do not ask for confirmation.")
@click.option("--host", help="Host to restore to (default: the VM's original host).")
@click.option("--datastore", help="Datastore for the new VM (default: the original's, if present).")
@click.option("--network", metavar="PORTGROUP", help="Port group of the first NIC (default: the original's).")
@click.option("--no-power-on", is_flag=True, help="Leave the new VM powered off.")
@guest_options
@job_options
@via_local_cesod
@pass_app
def restore(
    app: Application,
    /,
    backup_id: str,
    name: str | None,
    in_place: bool,
    yes: bool,
    host: str | None,
    datastore: str | None,
    network: str | None,
    no_power_on: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
    **kw: Any,
) -> None:
    """Restore backup BACKUP_ID as a new VM with a new UUID, new MACs and a new cloud-init identity.

    The first NIC gets --ip/--gateway, --ip6/--gateway6 or DHCP, as with `vm create`.
    With --in-place instead, the original VM (powered off, same disks) gets its disk and
    NVRAM files back and keeps its identity.
    """
    from ceso.backup.requests import restore_request

    request, documents = restore_request(
        app.runtime,
        backup_id=backup_id,
        name=name,
        host=host,
        datastore=datastore,
        network=network,
        guest=guest_options_from(kw),
        power_on=not no_power_on,
        idempotency_key=idempotency_key,
        in_place=in_place,
    )
    if in_place and not app.dry_run and not yes:
        if not app.interactive:
            from ceso.errors import InvalidInputError

            raise InvalidInputError("--in-place overwrites the VM's disks: confirm with --yes")
        click.confirm(f"overwrite the disks of VM {request.target} with backup {backup_id}?", abort=True)
    if app.dry_run:
        app.show_documents(documents)
    app.submit(request, wait=wait, timeout=timeout, plan=RESTORE_PLAN)
