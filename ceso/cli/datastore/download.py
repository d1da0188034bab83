"""``ceso datastore download``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("location", metavar="HOST:[DS]")
@click.argument("path")
@click.argument("dest", default=".", metavar="[DEST]")
@click.option("--force", is_flag=True, help="Replace a local file already at DEST.")
@pass_app
def download(app: Application, location: str, path: str, dest: str, force: bool) -> None:
    """Download file PATH of the datastore to DEST (a file, or a folder; default: here).

    The bytes go to DEST.ceso-part and replace DEST once complete. JSON:
    {host, datastore, path, file, bytes}.
    """
    from ceso.cli.progress import ByteProgress
    from ceso.datastore.operations import download as download_file
    from ceso.datastore.paths import parse_location

    ref = parse_location(location, path)
    with ByteProgress(f"download {ref.path}", None, lines=app.progress) as moved:
        written, size = download_file(app.runtime, ref, dest, replace=force, progress=moved)
    app.emit(
        {"host": ref.host, "datastore": ref.datastore, "path": ref.path, "file": written, "bytes": size},
        lambda: click.echo(f"downloaded {ref} to {written} ({size} bytes)"),
    )
