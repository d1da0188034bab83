"""``ceso target list``, ``check`` and ``remove``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@pass_app
def list_(app: Application) -> None:
    """List backup targets (settings only; credentials stay in the secret store)."""
    from ceso.backup.targets.registry import target_rows

    rows = target_rows(app.runtime)
    app.emit(
        rows,
        lambda: app.table(
            ["name", "type", "where", "checked"],
            [[r["name"], r["type"], r["where"], r["checked_at"]] for r in rows],
        ),
    )


@click.command()
@click.argument("name")
@pass_app
def check(app: Application, name: str) -> None:
    """Write, read back and delete a probe file on target NAME."""
    from ceso.backup.targets.registry import check_target

    facts = check_target(app.runtime, name)
    app.emit(facts, lambda: click.echo(f"target {name}: ok ({facts['type']})"))


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Remove even though the catalog lists backups on it.")
@pass_app
def remove(app: Application, name: str, force: bool) -> None:
    """Forget target NAME and its credentials (the files on it are not touched)."""
    from ceso.backup.targets.registry import remove_target

    if app.dry_run:
        app.emit({"dry_run": True, "name": name}, lambda: click.echo(f"dry run: would forget target {name}"))
        return
    removed = remove_target(app.runtime, name, force=force)
    app.emit({"name": removed.name, "removed": True}, lambda: click.echo(f"target {removed.name} removed"))
