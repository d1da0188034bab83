"""Job ids as people type them: a whole UUID, or an unambiguous prefix of one (the CLI prints the
first 8 characters), as backup ids already are."""

from __future__ import annotations

import re

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ceso.db.models import Job
from ceso.errors import ConflictError, InvalidInputError, NotFoundError
from ceso.jobs.ids import is_full_job_id, parse_job_id

__all__ = ["MIN_PREFIX", "expand_job_id"]

#: The shortest prefix taken, as for backup ids.
MIN_PREFIX = 6
_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]*")


def expand_job_id(engine: Engine, text: str) -> str:
    """The job id ``text`` names: itself if a UUID, else the one job whose id starts with it.

    Raises InvalidInputError (exit 2) for text that is neither, NotFoundError (4) when no job
    matches and ConflictError (5) naming two matches when the prefix is ambiguous.
    """
    if is_full_job_id(text):
        return parse_job_id(text)
    prefix = text.strip().lower()
    if len(prefix) < MIN_PREFIX or not _PREFIX.fullmatch(prefix):
        raise InvalidInputError(
            f"invalid job id {text!r}: give the whole id or at least {MIN_PREFIX} of its first characters"
        )
    with Session(engine) as session:
        matches = session.exec(select(Job.id).where(col(Job.id).startswith(prefix)).limit(2)).all()
    if not matches:
        raise NotFoundError(f"no job {text!r}")
    if len(matches) > 1:
        raise ConflictError(
            f"job id prefix {text!r} is ambiguous ({', '.join(matches)}…); give more characters"
        )
    return str(matches[0])
