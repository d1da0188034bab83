"""``ceso secrets init|check|rotate|import``: thin commands over the SQL secret store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from ceso.cli.application import Application, pass_app
from ceso.errors import ConfigError

if TYPE_CHECKING:
    from ceso.sql_secret_store import SqlSecretStore


def _sql_store(app: Application) -> SqlSecretStore:
    """The runtime's store, which must be the SQL one (it reaches us wrapped by the redacting
    store, which passes every other attribute through)."""
    if app.runtime.settings.secret_store != "sql":  # noqa: S105  (a store's name)
        raise ConfigError(
            f"secret_store is {app.runtime.settings.secret_store!r}: set secret_store: sql "
            "(CESO_SECRET_STORE=sql) to keep secrets encrypted in the database"
        )
    return cast("SqlSecretStore", app.runtime.secrets)


@click.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it (default: master_key_file, else <data_dir>/master.key).",
)
@pass_app
def init(app: Application, output: Path | None) -> None:
    """Make a new master key file (0600); refuses to overwrite one. Copy the same file to every
    machine of the installation; it never leaves this command on stdout."""
    import os

    from ceso.master_key import key_id, new_master_key

    settings = app.runtime.settings
    path = output or settings.master_key_file or settings.data_dir / "master.key"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = new_master_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} exists: a master key is never overwritten (rotate with a new file)"
        ) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    result = {"path": str(path), "key_id": key_id(key)}
    app.emit(result, lambda: click.echo(f"master key {result['key_id']} written to {path} (mode 0600)"))


@click.command()
@pass_app
def check(app: Application) -> None:
    """Decrypt every stored secret with this machine's master key file; exit 2 naming the first
    secret it cannot open (this machine lacks the installation's key)."""
    store = _sql_store(app)
    counts = store.check()
    keys = store.keys
    result = {"key_file": str(keys.path), "key_ids": list(keys.ids), "secrets_by_key": counts}
    app.emit(
        result,
        lambda: click.echo(
            f"{sum(counts.values())} secrets open with {keys.path} (keys {', '.join(keys.ids)}; "
            + ", ".join(f"{n} under {k}" for k, n in sorted(counts.items()))
            + ")"
            if counts
            else f"no secrets stored yet; {keys.path} holds keys {', '.join(keys.ids)}"
        ),
    )


@click.command()
@pass_app
def rotate(app: Application) -> None:
    """Re-encrypt every secret under the first key of the master key file.

    To rotate without downtime: put a new key (`ceso secrets init --output new.key`) on the first
    line of the key file on every machine, keeping the old key below it; run this once; then
    remove the old line everywhere.
    """
    store = _sql_store(app)
    moved = store.rotate()
    left = {k: n for k, n in store.check().items() if k != store.keys.primary_id}
    result = {"reencrypted": moved, "key_id": store.keys.primary_id, "left_under_other_keys": left}
    app.emit(
        result,
        lambda: click.echo(
            f"re-encrypted {moved} secret(s) under key {result['key_id']}; "
            + ("the old key lines can be removed now" if not left else f"still under other keys: {left}")
        ),
    )


@click.command("import")
@pass_app
def import_(app: Application) -> None:
    """Copy this machine's secrets from its encrypted file (secrets.enc in the data directory) into
    the database, encrypted under the master key; the file is left as it was."""
    from ceso.secrets import FileSecretStore

    store = _sql_store(app)
    local = FileSecretStore(app.runtime.settings.data_dir)
    if not local.data_path.exists():
        raise ConfigError(f"no local secrets to import: {local.data_path} does not exist")
    data = local.items()
    for name, value in sorted(data.items()):
        store.set(name, value)
    app.emit(
        {"imported": len(data)},
        lambda: click.echo(f"imported {len(data)} secret(s) from {local.data_path} into the database"),
    )
