"""Schema upgrades through Alembic, and the first-use check every command runs."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ceso.errors import CesoError, OperationError

__all__ = ["HEAD_REVISIONS", "current_revision", "current_revisions", "ensure_schema", "upgrade"]

#: The newest migration(s) (one per branch until branches are merged); a test checks
#: them against Alembic's own heads so this constant cannot go stale.
HEAD_REVISIONS = frozenset({"0010_backup_drills"})

_MIGRATIONS = Path(__file__).with_name("migrations")
_checked: set[str] = set()


def _alembic_config(engine: Engine) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema of ``engine``'s database to ``revision``."""
    from alembic import command
    from alembic.config import Config

    cfg = _alembic_config(engine)
    assert isinstance(cfg, Config)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    _checked.discard(str(engine.url))


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions recorded in the database (empty for an empty database)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return frozenset()
        return frozenset(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def current_revision(engine: Engine) -> str | None:
    """The single current revision, joined with '+' when branches are applied; None if empty."""
    revisions = current_revisions(engine)
    return "+".join(sorted(revisions)) if revisions else None


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is current before a command uses the database.

    An empty or older SQLite database is upgraded on the spot (it is the
    embedded default and has one user); PostgreSQL must be upgraded with
    ``ceso db upgrade`` by whoever runs it. Checked once per process and URL.
    """
    key = str(engine.url)
    if key in _checked:
        return
    try:
        revisions = current_revisions(engine)
    except sa.exc.OperationalError as exc:
        raise OperationError(f"database unreachable: {str(exc.orig).strip().splitlines()[0]}") from exc
    if revisions != HEAD_REVISIONS:
        if engine.url.get_backend_name() == "sqlite":
            with _sqlite_upgrade_lock(engine):
                # Another process (a worker and a beat started together) may have upgraded it
                # while this one waited for the lock.
                if current_revisions(engine) != HEAD_REVISIONS:
                    upgrade(engine)
        else:
            raise CesoError(
                f"database schema is at {'+'.join(sorted(revisions)) or 'nothing'}, ceso needs "
                f"{'+'.join(sorted(HEAD_REVISIONS))}: run `ceso db upgrade`",
                code="schema_outdated",
            )
    _checked.add(key)


@contextmanager
def _sqlite_upgrade_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.migrate.lock`` (0600, beside the database) so that
    processes starting together on a new SQLite file upgrade it one at a time. An in-memory
    database needs none."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield
        return
    fd = os.open(f"{database}.migrate.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
