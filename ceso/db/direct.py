"""Read-only queries through the database driver itself, for commands that must start fast.

Agents poll ``ceso --json job status ID`` in loops; importing SQLAlchemy and
SQLModel alone costs more than that command's whole time budget
(docs/benchmarks.md, benchmark 2). This module opens the database with the
driver (stdlib ``sqlite3``, or ``psycopg``) and runs one parameterised
SELECT.

Contract: :func:`open_readonly` returns None whenever it cannot be sure to
answer exactly like the SQLAlchemy path — a URL form it does not know, a
missing driver, a database file that does not exist yet — and callers then
take the normal path, which also creates or upgrades the schema and reports
errors. A query that fails (no such table, a column missing in an older
schema) raises :class:`DirectReadUnavailable` for the same fallback. Nothing
here ever writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["DirectReadUnavailable", "as_json", "as_utc_iso", "fetch_all", "fetch_one", "open_readonly"]


class DirectReadUnavailable(Exception):  # noqa: N818 - a signal to fall back, not an error shown to anyone
    """The direct path cannot answer; use the SQLAlchemy path."""


class _Connection:
    """A DB-API connection and the driver's parameter marker."""

    def __init__(self, conn: Any, marker: str, errors: tuple[type[BaseException], ...]) -> None:
        self.conn = conn
        self.marker = marker
        self.errors = errors


def _sqlite(url: str) -> _Connection | None:
    import sqlite3

    parts = urlsplit(url)
    if parts.query or parts.netloc:
        return None
    path = unquote(parts.path[1:])  # sqlite:///rel → "rel"; sqlite:////abs → "/abs"
    if not path or path == ":memory:" or not Path(path).is_file():
        return None
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    return _Connection(conn, "?", (sqlite3.Error,))


def _postgresql(url: str) -> _Connection | None:
    try:
        import psycopg
    except ImportError:
        return None
    conninfo = "postgresql:" + url.split(":", 1)[1]
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error:
        return None  # the normal path reports an unreachable database in its own words
    return _Connection(conn, "%s", (psycopg.Error,))


@contextmanager
def open_readonly(database_url: str) -> Iterator[_Connection | None]:
    """A read-only connection for ``database_url``, or None when the direct path cannot serve it."""
    scheme = database_url.split(":", 1)[0]
    conn: _Connection | None
    if scheme in ("sqlite", "sqlite+pysqlite"):
        conn = _sqlite(database_url)
    elif scheme in ("postgresql+psycopg", "postgresql+psycopg3"):
        conn = _postgresql(database_url)
    else:
        conn = None
    try:
        yield conn
    finally:
        if conn is not None:
            conn.conn.close()


def fetch_all(conn: _Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The rows of ``sql`` (``{}`` marks parameters) as dicts.

    Raises DirectReadUnavailable if the query fails, e.g. on a schema this
    code does not know.
    """
    try:
        cursor = conn.conn.cursor()
        cursor.execute(sql.replace("{}", conn.marker), tuple(params))
        rows = cursor.fetchall()
        names = [d[0] for d in cursor.description or []]
    except conn.errors as exc:
        raise DirectReadUnavailable(str(exc)) from exc
    return [dict(zip(names, row, strict=True)) for row in rows]


def fetch_one(conn: _Connection, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    """The first row of ``sql`` as a dict, or None (see :func:`fetch_all`)."""
    rows = fetch_all(conn, sql, params)
    return rows[0] if rows else None


def as_json(value: Any) -> Any:
    """A JSON column's value: SQLite hands back text, psycopg the decoded value."""
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def as_utc_iso(value: Any) -> str | None:
    """A UTC timestamp column as ``UTCDateTime`` shows it: ISO 8601 with ``+00:00``.

    SQLite stores naive UTC text; PostgreSQL returns an aware datetime.
    """
    if value is None:
        return None
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(stamp, datetime):
        raise DirectReadUnavailable(f"unexpected timestamp {value!r}")
    return (stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)).isoformat()
