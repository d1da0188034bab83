"""``ceso datastore ls``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("location", metavar="HOST:[DS]")
@click.argument("path", required=False)
@pass_app
def ls(app: Application, location: str, path: str | None) -> None:
    """List folder PATH (default: the datastore's root), or show file PATH.

    JSON: a list of {path, folder, size, modified}.
    """
    from ceso.cli.progress import human_bytes
    from ceso.datastore.operations import list_files
    from ceso.datastore.paths import parse_location

    entries = list_files(app.runtime, parse_location(location, path, root_ok=True))
    app.emit(
        [e.to_dict() for e in entries],
        lambda: app.table(
            ["path", "size", "modified"],
            [
                [
                    e.path + ("/" if e.folder else ""),
                    "" if e.size is None else human_bytes(e.size),
                    e.modified,
                ]
                for e in entries
            ],
        ),
    )
