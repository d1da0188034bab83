"""``ceso datastore rm``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("location", metavar="HOST:[DS]")
@click.argument("path")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def rm(app: Application, location: str, path: str, yes: bool) -> None:
    """Delete file or folder PATH (a folder with all it holds).

    Refused (exit 5, path_of_vm) when PATH belongs to a VM registered on the host: its
    folder, a disk, or a folder holding them; `ceso vm delete` removes a VM with its files.
    """
    from ceso.datastore.operations import remove
    from ceso.datastore.paths import parse_location

    ref = parse_location(location, path)
    if not yes and not app.dry_run:
        click.confirm(f"delete {ref}?", abort=True, err=True)
    entry = remove(app.runtime, ref, dry_run=app.dry_run)
    done = "would delete" if app.dry_run else "deleted"
    app.emit(
        {
            "host": ref.host,
            "datastore": ref.datastore,
            "path": ref.path,
            "folder": entry.folder,
            "dry_run": app.dry_run,
        },
        lambda: click.echo(f"{'dry run: ' if app.dry_run else ''}{done} {ref}"),
    )
