"""``ceso vm protect``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@click.option("--reason", help="Why (shown when a delete is refused).")
@pass_app
def protect(app: Application, name: str, host: str | None, reason: str | None) -> None:
    """Mark VM NAME so that `ceso vm delete` refuses it (no job; recorded in SQL)."""
    from ceso.vm.protection import protect_vm

    row = protect_vm(app.runtime, name=name, host=host, reason=reason)
    app.emit(row, lambda: click.echo(f"VM {row['name']} on {row['host']} is protected"))
