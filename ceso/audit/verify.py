"""Verifying the audit chain: which records were changed, removed or reordered.

Each record is checked on its own (its hash recomputed with its ``seq``) and
against its neighbour (its ``prev_hash`` must be the hash of the record that
belongs just before it). A record whose hash matches only with another
``seq`` — one of the other broken or empty places — was moved there:
*reordered*. A gap in ``seq`` is a *removed* record, and a head that is ahead
of the last record means records were removed from the end. A record edited
and then re-hashed by someone who knew the scheme shows up as the next
record's broken link, reported on the edited one.

What this cannot see: records appended at the end by someone who can write
the database and recompute hashes. Keep the head hash printed by
``audit verify`` somewhere else (a ticket, a log shipper) to anchor it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from ceso.audit.chain import HASHED_FIELDS, record_hash
from ceso.db.security_models import GENESIS_HASH, AuditHead, AuditRecord

__all__ = ["Problem", "VerifyReport", "verify_chain"]


@dataclass(frozen=True)
class Problem:
    seq: int
    problem: str  # changed | removed | reordered | head_mismatch
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "problem": self.problem, "message": self.message}


@dataclass
class VerifyReport:
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class _Row:
    seq: int
    stored: str
    prev: str
    status: str  # ok | changed | reordered
    belongs: int
    fields: dict[str, Any]


def _read(engine: Engine) -> tuple[list[_Row], tuple[int, str] | None]:
    columns = [getattr(AuditRecord, name) for name in HASHED_FIELDS]
    rows: list[_Row] = []
    with engine.connect() as conn:
        head = conn.execute(
            sa.select(col(AuditHead.seq), col(AuditHead.hash)).where(col(AuditHead.id) == 1)
        ).first()
        result = conn.execution_options(yield_per=1000).execute(
            sa.select(*columns, col(AuditRecord.hash)).order_by(col(AuditRecord.seq))
        )
        for raw in result:
            fields = dict(zip(HASHED_FIELDS, raw[:-1], strict=True))
            stored = str(raw[-1])
            status = "ok" if record_hash(fields) == stored else "changed"
            seq = int(fields["seq"])
            rows.append(_Row(seq, stored, str(fields["prev_hash"]), status, seq, fields))
    return rows, (int(head[0]), str(head[1])) if head else None


def verify_chain(engine: Engine) -> VerifyReport:
    """Check every record; the report lists each problem with the ``seq`` it concerns."""
    rows, head = _read(engine)
    report = VerifyReport(records=len(rows))
    _find_reordered(rows)
    _walk(rows, report)
    if head is not None:
        report.head_seq, report.head_hash = head
        _check_head(rows, head, report)
    report.problems.sort(key=lambda p: p.seq)
    return report


def _find_reordered(rows: list[_Row]) -> None:
    """Mark changed records that are intact records moved from another place.

    A record moved from position q to p re-hashes correctly with ``seq`` = q,
    and q itself no longer holds its own record (or is empty). So only the
    other mismatching or missing positions are candidates; with very many
    of them only the near neighbours are tried, to stay linear.
    """
    changed = [r for r in rows if r.status == "changed"]
    if not changed:
        return
    present = {r.seq for r in rows}
    gaps = {q for q in range(1, rows[-1].seq) if q not in present}
    spots = {r.seq for r in changed} | gaps
    for r in changed:
        near = spots if len(spots) <= 200 else {q for q in spots if abs(q - r.seq) <= 8}
        for q in sorted(near - {r.seq}, key=lambda q: abs(q - r.seq)):
            if record_hash({**r.fields, "seq": q}) == r.stored:
                r.status, r.belongs = "reordered", q
                break


def _walk(rows: list[_Row], report: VerifyReport) -> None:
    true_hash = {r.belongs: r.stored for r in rows if r.status != "changed"}
    by_seq = {r.seq: r for r in rows}
    expected = 1
    for r in rows:
        if r.seq > expected:
            span = f"{expected}" if r.seq == expected + 1 else f"{expected}-{r.seq - 1}"
            report.problems.append(
                Problem(expected, "removed", f"record(s) {span} missing before record {r.seq}")
            )
        expected = r.seq + 1
        if r.status == "changed":
            message = f"record {r.seq} was changed (its hash does not match its contents)"
            report.problems.append(Problem(r.seq, "changed", message))
            continue
        if r.status == "reordered":
            message = f"record {r.seq} holds the record that belongs at {r.belongs} (reordered)"
            report.problems.append(Problem(r.seq, "reordered", message))
            continue
        want = GENESIS_HASH if r.seq == 1 else true_hash.get(r.seq - 1)
        prev_row = by_seq.get(r.seq - 1)
        if want is not None and r.prev != want and prev_row is not None and prev_row.status == "ok":
            message = f"record {prev_row.seq} was changed and re-hashed (record {r.seq} chained to a different hash)"
            report.problems.append(Problem(prev_row.seq, "changed", message))


def _check_head(rows: list[_Row], head: tuple[int, str], report: VerifyReport) -> None:
    last = rows[-1] if rows else None
    if last is None:
        if head[0] > 0:
            report.problems.append(Problem(1, "removed", f"all records 1-{head[0]} are missing"))
    elif head[0] > last.seq:
        message = f"record(s) {last.seq + 1}-{head[0]} missing at the end"
        report.problems.append(Problem(last.seq + 1, "removed", message))
    elif head[1] != last.stored and last.status == "ok":
        message = f"the chain head does not match record {last.seq}"
        report.problems.append(Problem(last.seq, "head_mismatch", message))
