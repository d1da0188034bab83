"""``ceso vm list``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app

if TYPE_CHECKING:
    from ceso.esxi.inventory import VmSummary
    from ceso.inventory import HostFailure

POWER_STATES = {"on": "poweredOn", "off": "poweredOff", "suspended": "suspended"}


@click.command("list")
@click.option("--host", help="Only this host (default: every registered host).")
@click.option("--name", "pattern", metavar="GLOB", help="Only VMs whose name matches, e.g. 'web-*'.")
@click.option("--power", type=click.Choice(sorted(POWER_STATES)), help="Only VMs in this power state.")
@click.option(
    "--template/--no-template",
    default=None,
    help="Only templates (registered with `ceso template add`, or marked in vSphere), or only other VMs.",
)
@pass_app
def list_(
    app: Application, host: str | None, pattern: str | None, power: str | None, template: bool | None
) -> None:
    """List VMs with one property-collector round trip per host.

    Every registered host is read in parallel; a host that does not answer is named on stderr
    (with --json the output becomes {vms, errors}) and the command exits 6 after listing what
    the others answered.

    JSON: a list of {name, host, uuid, power_state, cpus, memory_mb, guest_id,
    template, vmx_path, disks [path, capacity_bytes, thin], nics [mac, network],
    ip_addresses, snapshots}.
    """
    from fnmatch import fnmatchcase

    from ceso.errors import HostUnreachableError
    from ceso.inventory import list_answering_hosts

    found, failures = list_answering_hosts(app.runtime, host)
    _remember(found, failures, host)
    registered = _registered_templates(app) if template is not None else set()
    vms = [
        v
        for v in found
        if (pattern is None or fnmatchcase(v.name, pattern))
        and (power is None or v.power_state == POWER_STATES[power])
        and (template is None or (v.template or (v.name, v.host) in registered) == template)
    ]
    rows = [v.to_dict() for v in vms]
    app.emit(
        {"vms": rows, "errors": [f.to_dict() for f in failures]} if failures else rows,
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
    if failures:
        for failure in failures:
            click.echo(f"error: host {failure.host}: {failure.error.message}", err=True)
        names = ", ".join(f.host for f in failures)
        raise HostUnreachableError(
            f"{len(failures)} of the hosts did not answer: {names}", details={"reported": True}
        )


def _remember(found: list[VmSummary], failures: list[HostFailure], host: str | None) -> None:
    """Keep the names each answering host listed, for shell completion (:mod:`ceso.cli.name_completion`)."""
    from ceso.cli.name_completion import remember_vm_names

    failed = {f.host for f in failures}
    by_host: dict[str, list[str]] = {}
    for v in found:
        by_host.setdefault(v.host, []).append(v.name)
    hosts = [host] if host is not None else sorted({*by_host, *failed})
    remember_vm_names({h: by_host.get(h, []) for h in hosts if h not in failed})


def _registered_templates(app: Application) -> set[tuple[str, str]]:
    """(name, host) of the VMs registered as ceso templates."""
    from sqlmodel import Session

    from ceso.vm.templates import list_templates

    with Session(app.runtime.engine) as session:
        return {(t.name, t.host) for t in list_templates(session)}
