"""``ceso vm reconfigure``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod

RECONFIGURE_PLAN = [
    "lock the VM; read its hardware again and plan every change",
    "HostDatastoreBrowser.SearchDatastore_Task: the ISO exists (only with --iso)",
    "VirtualMachine.ReconfigVM_Task: one task with every change (CPUs, memory, disks, NIC, CD-ROM)",
]


@click.command()
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@click.option("--cpus", type=int, help="Virtual CPUs (on a running VM only with CPU hot-add).")
@click.option(
    "--memory", metavar="SIZE", help="Memory, e.g. 4G or 4096 (MiB); a running VM needs memory hot-add."
)
@click.option(
    "--disk-grow",
    nargs=2,
    multiple=True,
    metavar="DISK SIZE",
    help="Grow disk DISK (number from 1, or label such as 'Hard disk 1') to SIZE; never shrinks. Repeatable.",
)
@click.option("--network", metavar="PORTGROUP", help="Move a NIC to this port group.")
@click.option("--nic", type=int, metavar="N", help="The NIC --network moves (default: the first).")
@click.option(
    "--iso", metavar="'[DS] PATH'", help="Attach an ISO from a datastore, e.g. '[datastore1] iso/ubuntu.iso'."
)
@click.option("--eject-iso", is_flag=True, help="Eject the ISO from the CD-ROM.")
@job_options
@via_local_cesod
@pass_app
def reconfigure(
    app: Application,
    /,
    name: str,
    host: str | None,
    cpus: int | None,
    memory: str | None,
    disk_grow: tuple[tuple[str, str], ...],
    network: str | None,
    nic: int | None,
    iso: str | None,
    eject_iso: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Change VM NAME's CPUs, memory, disk sizes, NIC port group or ISO in one reconfigure task.

    A CD-ROM is added on the first IDE or SATA controller if the VM has none.
    """
    from ceso.vm.reconfigure import ReconfigureOptions, reconfigure_request

    options = ReconfigureOptions(
        cpus=cpus,
        memory=memory,
        disk_grow=disk_grow,
        network=network,
        nic=nic,
        iso=iso,
        eject_iso=eject_iso,
    )
    request, changes = reconfigure_request(
        app.runtime, name=name, host=host, options=options, idempotency_key=idempotency_key
    )
    app.submit(request, wait=wait, timeout=timeout, plan=[*RECONFIGURE_PLAN, *(f"  {c}" for c in changes)])
