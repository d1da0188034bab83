"""Schema upgrades through Alembic, and the first-use check every command runs."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ceso.errors import CesoError, OperationError

__all__ = ["HEAD_REVISIONS", "current_revision", "current_revisions", "ensure_schema", "upgrade"]

#: The newest migration(s) (one per branch until branches are merged); a test checks
#: them against Alembic's own heads so this constant cannot go stale.
HEAD_REVISIONS = frozenset({"0005"})

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
            upgrade(engine)
        else:
            raise CesoError(
                f"database schema is at {'+'.join(sorted(revisions)) or 'nothing'}, ceso needs "
                f"{'+'.join(sorted(HEAD_REVISIONS))}: run `ceso db upgrade`",
                code="schema_outdated",
            )
    _checked.add(key)
