"""``job status`` without SQLAlchemy: one job row read with the database driver.

The answer is exactly :func:`ceso.jobs.store.job_to_dict` of the same row (a
test holds the two paths to that on SQLite and PostgreSQL). When the direct
path cannot serve (see :mod:`ceso.db.direct`), :func:`read_job` returns None
and the caller uses the SQLAlchemy path.
"""

from __future__ import annotations

from typing import Any

from ceso.db.direct import DirectReadUnavailable, as_json, as_utc_iso, fetch_one, open_readonly
from ceso.errors import NotFoundError
from ceso.jobs.ids import parse_job_id
from ceso.jobs.shape import COLUMNS, TIMESTAMPS, job_dict

__all__ = ["read_job"]

_JSON = ("steps", "params", "result")


def read_job(database_url: str, job_id: str) -> dict[str, Any] | None:
    """The job as ``job_to_dict`` shows it; None if the direct path cannot answer.

    Raises InvalidInputError for a malformed id and NotFoundError for an
    unknown one, as the SQLAlchemy path does.
    """
    canonical = parse_job_id(job_id)
    try:
        with open_readonly(database_url) as conn:
            if conn is None:
                return None
            row = fetch_one(conn, f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = {{}}", [canonical])  # noqa: S608
            if row is None:
                raise NotFoundError(f"no job {job_id}")
            return _job_dict(row)
    except DirectReadUnavailable:
        return None


def _job_dict(row: dict[str, Any]) -> dict[str, Any]:
    for name in _JSON:
        row[name] = as_json(row[name])
    for name in TIMESTAMPS:
        row[name] = as_utc_iso(row[name])
    return job_dict(row)
