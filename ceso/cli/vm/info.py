"""``ceso vm info``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@pass_app
def info(app: Application, name: str, host: str | None) -> None:
    """Show one VM: identity, power, hardware, disks, NICs, addresses, snapshots."""
    from ceso.inventory import vm_details

    vm = vm_details(app.runtime, name, host)

    def human() -> None:
        click.echo(f"{vm.name} on {vm.host}: {vm.power_state}")
        click.echo(f"  uuid: {vm.uuid}   guest: {vm.guest_id}   template: {vm.template}")
        click.echo(f"  cpus: {vm.cpus}   memory: {vm.memory_mb} MiB   snapshots: {vm.snapshots}")
        click.echo(f"  vmx: {vm.vmx_path}")
        for d in vm.disks:
            click.echo(f"  disk {d.path}: {d.capacity_bytes / 2**30:.1f} GiB{' thin' if d.thin else ''}")
        for n in vm.nics:
            click.echo(f"  nic {n.mac} on {n.network}")
        if vm.ip_addresses:
            click.echo(f"  addresses: {', '.join(vm.ip_addresses)}")

    app.emit(vm.to_dict(), human)
