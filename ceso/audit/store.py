"""Appending audit records, one transaction each, safe under concurrent writers on both databases.

The chain head is a single row (``audit_head``, id 1). An append first
*updates* that row (``seq = seq + 1 … RETURNING seq, hash``): on PostgreSQL
the UPDATE takes the row lock, and on SQLite the first write of a
transaction takes the database write lock (waiting up to the busy timeout),
so from that statement on no other appender can move the head. The record
is then hashed onto the head it read, inserted with ``seq`` = the new head,
and the head's hash moved, all in the same transaction. Starting with a write rather than ``SELECT … FOR UPDATE`` gives the same
exclusion on both databases (SQLite has no FOR UPDATE, and a SQLite reader
that later writes would fail with SQLITE_BUSY_SNAPSHOT instead of waiting).

:func:`append` raises; :func:`record` is the guarded form for bookkeeping
that must never break the job or command it describes.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ceso.audit.chain import json_safe, record_hash
from ceso.db.bounds import fit_text
from ceso.db.security_models import GENESIS_HASH, AuditHead, AuditRecord
from ceso.db.types import utcnow
from ceso.security.caller import current_caller
from ceso.security.redact import redact, redact_text

__all__ = ["AppendFailedError", "AuditEvent", "add_observer", "append", "record", "record_in"]

log = logging.getLogger(__name__)

_ATTEMPTS = 8
_observers: list[Any] = []


@dataclass
class AuditEvent:
    """What happened. Unset actor, mode, source and client address come from the bound caller."""

    event: str
    outcome: str = "ok"  # ok | refused | failed | cancelled
    operation: str | None = None
    actor: str | None = None
    mode: str | None = None
    source: str | None = None
    client_addr: str | None = None
    job_id: str | None = None
    host: str | None = None
    vm: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def add_observer(fn: Any) -> Any:
    """Call ``fn(fields)`` after every appended record (metrics hook); failures are logged, never raised."""
    _observers.append(fn)
    return fn


def _fields(event: AuditEvent) -> dict[str, Any]:
    """The record's columns. A text over its column's length (the name in a refused request, say)
    is cut to fit, ending in ``…``: the record of bad input is kept, and ``details`` has it whole."""
    caller = current_caller()
    principal = caller.principal if caller else None
    texts = {
        "event": event.event,
        "outcome": event.outcome,
        "operation": event.operation,
        "actor": event.actor or (principal.actor if principal else "unknown"),
        "mode": event.mode or (principal.mode if principal else None),
        "source": event.source or (caller.source if caller else "cli"),
        "client_addr": event.client_addr or (caller.client_addr if caller else None),
        "job_id": event.job_id,
        "host": event.host,
        "vm": redact_text(event.vm) if event.vm else None,
    }
    fields: dict[str, Any] = {key: fit_text(value, AuditRecord, key) for key, value in texts.items()}
    fields["details"] = json_safe(redact(event.details))
    return fields


def append(engine: Engine, event: AuditEvent) -> int:
    """Append ``event`` (redacted) to the chain; return its ``seq``.

    Retries a few times when the head row is missing (a truncated database)
    or the database is busy; raises the last SQLAlchemy error after that.
    """
    fields = _fields(event)
    for attempt in range(_ATTEMPTS):
        try:
            seq = _append_once(engine, fields)
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
            continue
        for fn in list(_observers):
            try:
                fn(fields)
            except Exception:
                log.debug("audit observer %r failed", fn, exc_info=True)
        return seq
    raise AssertionError("unreachable")


def _append_once(engine: Engine, fields: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return _append_on(conn, fields)


def _append_on(conn: sa.Connection, fields: dict[str, Any]) -> int:
    advance, insert, move = _statements(tuple(fields))
    head = conn.execute(advance).first()
    if head is None:  # the head row is gone (tables truncated): start a new chain
        conn.execute(sa.insert(AuditHead).values(id=1, seq=1, hash=GENESIS_HASH))
        seq, prev_hash = 1, GENESIS_HASH
    else:
        seq, prev_hash = int(head[0]), str(head[1])
    row = {**fields, "seq": seq, "at": utcnow(), "prev_hash": prev_hash}
    row["hash"] = record_hash(row)
    conn.execute(insert, row)
    conn.execute(move, {"new_hash": row["hash"]})
    fields.update(seq=seq, at=row["at"])
    return seq


@functools.cache
def _statements(columns: tuple[str, ...]) -> tuple[sa.Update, sa.Insert, sa.Update]:
    """The append's three statements, built once per set of record columns (on Core tables: every
    job step appends a record, and building ORM statements cost more than running them)."""
    head: sa.Table = AuditHead.__table__  # type: ignore[attr-defined]
    records: sa.Table = AuditRecord.__table__  # type: ignore[attr-defined]
    advance = (
        sa.update(head).where(head.c.id == 1).values(seq=head.c.seq + 1).returning(head.c.seq, head.c.hash)
    )
    chained = ("seq", "at", "prev_hash", "hash")
    names = (*(c for c in columns if c not in chained), *chained)
    insert = sa.insert(records).values({n: sa.bindparam(n, type_=records.c[n].type) for n in names})
    move = sa.update(head).where(head.c.id == 1).values(hash=sa.bindparam("new_hash", type_=head.c.hash.type))
    return advance, insert, move


class AppendFailedError(Exception):
    """An unguarded :func:`record_in` failed: the caller's transaction must be rolled back."""


def record_in(conn: sa.Connection, event: AuditEvent, *, guarded: bool = True) -> int | None:
    """Append ``event`` inside the caller's open transaction, so it commits (or not) with the change.

    The append runs in a SAVEPOINT: if it fails, only the record is rolled
    back (and logged); the caller's change still commits. With ``guarded=False``
    there is no savepoint (two round trips less on PostgreSQL) and a failure
    raises AppendFailedError: the caller rolls its whole transaction back and
    makes it again guarded (:func:`ceso.jobs.store.update_running` does).
    """
    fields = _fields(event)
    if not guarded:
        try:
            return _append_on(conn, fields)
        except Exception as exc:
            raise AppendFailedError(f"audit record {event.event} (job {event.job_id}) not written") from exc
    try:
        with conn.begin_nested():
            return _append_on(conn, fields)
    except Exception:
        log.warning("audit record %s (job %s) not written", event.event, event.job_id, exc_info=True)
        return None


def record(engine: Engine, event: AuditEvent) -> int | None:
    """:func:`append`, but a failure is logged and swallowed (bookkeeping never breaks the caller)."""
    try:
        return append(engine, event)
    except Exception:
        log.warning("audit record %s (job %s) not written", event.event, event.job_id, exc_info=True)
        return None
