"""Audit completeness: every job in a database has the audit records of what happened to it.

Rules, per job row:

* a job that was published, claimed or ended has a ``job.submitted`` record
  (or, for a row that never went through submit — a forged one — the
  ``job.refused`` record of the worker that refused it); an unpublished,
  unclaimed, queued row is inert and needs none;
* a job claimed at least once (``attempts`` > 0) has a ``job.claimed`` record;
* a job in a terminal state has its ``job.succeeded``/``job.failed``/``job.cancelled`` record.

Used by ``tests/conftest.py`` after every test that had a database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

__all__ = ["audit_gaps"]

FINISHED = {"job.succeeded", "job.failed", "job.cancelled"}
TERMINAL = {"succeeded", "failed", "cancelled"}


def audit_gaps(url: str) -> tuple[int, list[str]]:
    """(jobs checked, one line per missing record) for the database at ``url``."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return 0, []
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if not {"jobs", "audit_records"} <= tables:
                return 0, []
            jobs = conn.execute(sa.text("SELECT id, kind, state, attempts, published_at FROM jobs")).all()
            events: dict[str, set[str]] = defaultdict(set)
            for job_id, event in conn.execute(
                sa.text("SELECT job_id, event FROM audit_records WHERE job_id IS NOT NULL")
            ):
                events[str(job_id)].add(str(event))
    finally:
        engine.dispose()
    gaps: list[str] = []
    for job_id, kind, state, attempts, published_at in jobs:
        seen = events[str(job_id)]
        acted_on = published_at is not None or attempts > 0 or state in TERMINAL
        if acted_on and not seen & {"job.submitted", "job.refused"}:
            gaps.append(f"job {job_id} ({kind}, {state}): no job.submitted record")
        if attempts > 0 and "job.claimed" not in seen:
            gaps.append(f"job {job_id} ({kind}, {state}): claimed {attempts}x but no job.claimed record")
        if state in TERMINAL and not seen & FINISHED:
            gaps.append(f"job {job_id} ({kind}, {state}): no record of its outcome")
    return len(jobs), gaps
