"""``ceso backup key export``, ``import`` and ``show-fingerprint``: keep the encryption key safe."""

from __future__ import annotations

import sys

import click

from ceso.cli.application import Application, pass_app


@click.group()
def key() -> None:
    """The backup encryption key: copy it off this machine, bring it back, tell keys apart.

    Encrypted backups can be restored only with the key they were made with, and the
    key lives in this machine's secret store. Export it once and keep the file
    offline; see docs/operations.md ("Keep your backup key safe").
    """


@key.command()
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="FILE",
    help="New file to write (created mode 0600, never overwritten); '-' for standard output.",
)
@pass_app
def export(app: Application, output: str) -> None:
    """Write the backup encryption key to a new file, as text `backup key import` reads.

    Anyone holding the file can decrypt your encrypted backups: keep it offline (a
    password manager, a safe), never beside the backups. With --output - the key
    file's text is all of standard output, also with --json. Local operator only:
    agents are refused in any mode.
    """
    from ceso.backup.key_transfer import STDIO, export_key

    result = export_key(app.runtime, output=output, dry_run=app.dry_run)
    if app.dry_run:
        app.emit(
            {"dry_run": True, **result.to_dict()},
            lambda: click.echo(f"dry run: would write backup key {result.key_id} to {result.output}"),
        )
        return
    if result.text is not None:
        click.echo(
            "warning: the backup encryption key follows on standard output; do not leave it in a "
            "terminal scrollback, log or shell history",
            err=True,
        )
        click.echo(result.text, nl=False)
        return
    assert result.output != STDIO
    app.emit(
        result.to_dict(),
        lambda: click.echo(
            f"backup key {result.key_id} written to {result.output} (mode 0600); keep it off this machine"
        ),
    )


@key.command("import")
@click.option(
    "--input",
    "-i",
    "source",
    default="-",
    show_default=True,
    metavar="FILE",
    help="Key file written by `backup key export`; '-' for standard input.",
)
@click.option("--force", is_flag=True, help="Replace a different key already stored.")
@pass_app
def import_(app: Application, source: str, force: bool) -> None:
    """Store a backup encryption key exported with `backup key export`.

    A malformed key is refused (exit 2) and nothing changes. If the secret store
    already holds a different key, the import is refused (exit 5) unless --force:
    backups made with the replaced key then need that key again to be restored, so
    export it first. Local operator only.
    """
    from ceso.backup.key_transfer import STDIO, import_key, read_key_source

    if source == STDIO and sys.stdin.isatty():
        click.echo("paste the key file, then press Ctrl-D", err=True)
    text = read_key_source(source, sys.stdin)
    result = import_key(app.runtime, text=text, source=source, force=force, dry_run=app.dry_run)
    if app.dry_run:
        verb = "would keep" if result["unchanged"] else "would import"
        app.emit(result, lambda: click.echo(f"dry run: {verb} backup key {result['key_id']}"))
        return
    if result["replaced"]:
        click.echo(
            f"warning: replaced backup key {result['previous_key_id']}; the "
            f"{result['backups_needing_previous_key']} catalogued backups made with it can be restored "
            "only after importing that key again",
            err=True,
        )

    def human() -> None:
        if result["unchanged"]:
            click.echo(f"backup key {result['key_id']} is already the stored key; nothing changed")
        else:
            click.echo(
                f"backup key {result['key_id']} imported "
                f"({result['backups_with_this_key']} catalogued backups use it)"
            )

    app.emit(result, human)


@key.command("show-fingerprint")
@pass_app
def show_fingerprint(app: Application) -> None:
    """Show the stored key's public id, the `encryption.key_id` of the backups it opens.

    The id is not secret. Each encrypted backup's manifest and `backup list --json`
    entry carry the id of the key it needs.
    """
    from ceso.backup.key_transfer import fingerprint

    result = fingerprint(app.runtime)

    def human() -> None:
        click.echo(
            f"backup key {result['key_id']}: {result['backups_with_this_key']} catalogued backups use it"
        )
        for other, count in result["backups_with_other_keys"].items():
            click.echo(f"  {count} catalogued backups need another key: {other}")

    app.emit(result, human)
