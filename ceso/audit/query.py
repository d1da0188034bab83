"""Reading the audit trail: list with filters, show one record, stream all for export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ceso.audit.chain import HASHED_FIELDS
from ceso.db.bounds import check_integer
from ceso.db.security_models import AuditRecord
from ceso.db.types import utcnow
from ceso.errors import InvalidInputError, NotFoundError

__all__ = ["get_record", "iter_records", "list_records", "parse_since", "record_to_dict"]

_COLUMNS = (*HASHED_FIELDS, "hash")


def record_to_dict(row: AuditRecord) -> dict[str, Any]:
    """The JSON shape of a record: every column, ``at`` in ISO 8601 (what the hash covers)."""
    out = {name: getattr(row, name) for name in _COLUMNS}
    out["at"] = row.at.isoformat()
    return out


def parse_since(text: str) -> datetime:
    """``--since``: an ISO 8601 time (UTC if no zone) or a duration back from now (``2h``, ``30m``)."""
    from ceso.security.durations import parse_duration

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return utcnow() - timedelta(seconds=parse_duration(text, field="--since"))
        except (InvalidInputError, OverflowError):  # OverflowError: a duration before year 1
            raise InvalidInputError(
                f"--since {text!r}: give an ISO time (2026-11-26T10:00) or a duration (2h, 30m)"
            ) from None
    return when if when.tzinfo else when.replace(tzinfo=utcnow().tzinfo)


def _filtered(
    query: Any,
    *,
    actor: str | None,
    vm: str | None,
    since: datetime | None,
    event: str | None,
    job_id: str | None,
) -> Any:
    if actor is not None:
        # "bot" matches the actor "agent:bot" as well as the exact string.
        query = query.where(
            sa.or_(col(AuditRecord.actor) == actor, col(AuditRecord.actor).like(f"%:{actor}"))
        )
    if vm is not None:
        query = query.where(col(AuditRecord.vm) == vm)
    if since is not None:
        query = query.where(col(AuditRecord.at) >= since)
    if event is not None:
        query = query.where(col(AuditRecord.event) == event)
    if job_id is not None:
        query = query.where(col(AuditRecord.job_id) == job_id)
    return query


def list_records(
    session: Session,
    *,
    actor: str | None = None,
    vm: str | None = None,
    since: datetime | None = None,
    event: str | None = None,
    job_id: str | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """The newest ``limit`` matching records, oldest first (like the end of a log)."""
    query = (
        _filtered(select(AuditRecord), actor=actor, vm=vm, since=since, event=event, job_id=job_id)
        .order_by(col(AuditRecord.seq).desc())
        .limit(limit)
    )
    return list(reversed(session.exec(query).all()))


def get_record(session: Session, seq: int) -> AuditRecord:
    """Audit record ``seq``: InvalidInputError if no record could have that number, NotFoundError if none has."""
    check_integer(seq, AuditRecord, "seq", what="audit record ID")
    row = session.get(AuditRecord, seq)
    if row is None:
        raise NotFoundError(f"no audit record {seq}")
    return row


def iter_records(
    engine: Engine, *, since: datetime | None = None, actor: str | None = None, vm: str | None = None
) -> Iterator[AuditRecord]:
    """Every matching record in chain order, read in pages (for export)."""
    last = 0
    while True:
        with Session(engine) as session:
            query = _filtered(select(AuditRecord), actor=actor, vm=vm, since=since, event=None, job_id=None)
            page = session.exec(
                query.where(col(AuditRecord.seq) > last).order_by(col(AuditRecord.seq)).limit(1000)
            ).all()
        if not page:
            return
        yield from page
        last = page[-1].seq
