"""``ceso vm unprotect``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@pass_app
def unprotect(app: Application, name: str, host: str | None) -> None:
    """Remove the mark `ceso vm protect` set on VM NAME (a VM not protected is fine)."""
    from ceso.vm.protection import unprotect_vm

    row = unprotect_vm(app.runtime, name=name, host=host)
    was = "" if row["changed"] else " (it was not protected)"
    app.emit(row, lambda: click.echo(f"VM {row['name']} on {row['host']} is not protected{was}"))
