"""``ceso datastore upload``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("file", metavar="FILE")
@click.argument("location", metavar="HOST:[DS]")
@click.argument("path")
@click.option("--force", is_flag=True, help="Replace a file already at PATH.")
@pass_app
def upload(app: Application, file: str, location: str, path: str, force: bool) -> None:
    """Upload local FILE to PATH on the datastore (PATH ending in '/': into that folder).

    The folder must exist. The bytes go to PATH.ceso-part and are renamed to PATH once
    complete, so a broken upload never leaves half a file under the real name. JSON:
    {host, datastore, path, bytes}.
    """
    import os

    from ceso.cli.progress import ByteProgress
    from ceso.datastore.operations import upload as upload_file
    from ceso.datastore.paths import parse_location

    if path.endswith("/"):
        path += os.path.basename(file)
    ref = parse_location(location, path)
    size = os.stat(file).st_size if os.path.isfile(file) else None
    with ByteProgress(f"upload {ref.path}", size, lines=app.progress) as moved:
        sent = upload_file(app.runtime, file, ref, replace=force, progress=moved, dry_run=app.dry_run)
    done = "dry run: would upload" if app.dry_run else "uploaded"
    app.emit(
        {
            "host": ref.host,
            "datastore": ref.datastore,
            "path": ref.path,
            "bytes": sent,
            "dry_run": app.dry_run,
        },
        lambda: click.echo(f"{done} {file} to {ref} ({sent} bytes)"),
    )
