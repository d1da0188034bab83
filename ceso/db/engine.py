"""Engines and sessions: one cached engine per URL per process.

SQLite gets WAL and a busy timeout because the CLI and several worker
processes write to the same file; PostgreSQL gets pre-ping so a restarted
server costs one retry, not a failed job.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from ceso.errors import ConfigError

__all__ = ["SUPPORTED_BACKENDS", "get_engine", "make_engine", "session_scope"]

#: The databases ceso is tested on (``database_url``'s scheme, any driver).
SUPPORTED_BACKENDS = frozenset({"sqlite", "postgresql"})


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _private_database_file(path: str) -> None:
    """Create the SQLite file's directory (0700) and the file itself (0600) before SQLite does (0644)."""
    from ceso.private_paths import make_private_dir, make_private_file

    try:
        make_private_dir(Path(path).parent)
        make_private_file(path)
    except OSError as exc:
        raise ConfigError(f"database_url: cannot create the SQLite database {path}: {exc.strerror}") from exc


def make_engine(url: str) -> Engine:
    """Create a new engine for ``url`` (use :func:`get_engine` to share one)."""
    from ceso.db.bounds import install_flush_check

    install_flush_check()  # every ORM write checked against its columns' bounds
    shown = url.rsplit("@", maxsplit=1)[-1]  # never the user name and password
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a malformed host or port
        raise ConfigError(f"database_url: not a valid SQLAlchemy URL: {shown!r}") from exc
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(f"database_url: not a valid SQLAlchemy URL: {shown!r} (port {parsed.port})")
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"database_url: unsupported database {parsed.get_backend_name()!r} in {shown!r}; "
            "use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
                _private_database_file(parsed.database)
            engine = sa.create_engine(parsed, connect_args={"timeout": 30})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (sa.exc.ArgumentError, ValueError) as exc:  # NoSuchModuleError (a driver) is an ArgumentError
        raise ConfigError(f"database_url: cannot use {shown!r}: {exc}") from exc


@functools.cache
def get_engine(url: str) -> Engine:
    """The process-wide engine of ``url``."""
    return make_engine(url)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
