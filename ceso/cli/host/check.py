"""``ceso host check``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@pass_app
def check(app: Application, name: str) -> None:
    """Log in to host NAME and show product, API version, datastores, networks and VM count."""
    from ceso.hosts.registry import check_host

    facts = check_host(app.runtime, name)

    def human() -> None:
        click.echo(f"{facts['name']}: {facts['product']} (API {facts['api_version']}, {facts['api_type']})")
        click.echo(f"  VMs: {facts['vm_count']}   networks: {', '.join(facts['networks']) or '-'}")
        for ds in facts["datastores"]:
            free, cap = (ds["free_bytes"] or 0) / 2**30, (ds["capacity_bytes"] or 0) / 2**30
            click.echo(f"  datastore {ds['name']} ({ds['type']}): {free:.1f} GiB free of {cap:.1f} GiB")

    app.emit(facts, human)
