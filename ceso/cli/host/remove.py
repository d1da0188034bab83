"""``ceso host remove``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@pass_app
def remove(app: Application, name: str) -> None:
    """Forget host NAME and its stored password (its VMs are not touched)."""
    from ceso.hosts.registry import remove_host

    if app.dry_run:
        app.emit({"dry_run": True, "name": name}, lambda: click.echo(f"dry run: would forget host {name}"))
        return
    removed = remove_host(app.runtime, name)
    app.emit({"name": removed.name, "removed": True}, lambda: click.echo(f"host {removed.name} removed"))
