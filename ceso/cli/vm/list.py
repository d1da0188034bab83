"""``ceso vm list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@click.option("--host", help="Only this host (default: every registered host).")
@pass_app
def list_(app: Application, host: str | None) -> None:
    """List VMs with one property-collector round trip per host.

    JSON: a list of {name, host, uuid, power_state, cpus, memory_mb, guest_id,
    template, vmx_path, disks [path, capacity_bytes, thin], nics [mac, network],
    ip_addresses, snapshots}.
    """
    from ceso.inventory import list_all_vms

    vms = list_all_vms(app.runtime, host)
    app.emit(
        [v.to_dict() for v in vms],
        lambda: app.table(
            ["name", "host", "power", "cpus", "memory_mb", "disks", "ip", "snapshots"],
            [
                [
                    v.name,
                    v.host,
                    v.power_state,
                    v.cpus,
                    v.memory_mb,
                    len(v.disks),
                    ",".join(v.ip_addresses),
                    v.snapshots,
                ]
                for v in vms
            ],
        ),
    )
