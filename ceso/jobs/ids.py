"""Job ids: UUIDs, checked before any query (a light module: the fast read paths import it)."""

from __future__ import annotations

import uuid

from ceso.errors import InvalidInputError

__all__ = ["is_full_job_id", "parse_job_id"]


def parse_job_id(job_id: str) -> str:
    """A job id in canonical form; InvalidInputError if it is not a UUID."""
    try:
        return str(uuid.UUID(job_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidInputError(f"invalid job id {job_id!r}: expected a UUID") from None


def is_full_job_id(text: str) -> bool:
    """True if ``text`` is a whole job id (a prefix is expanded by :mod:`ceso.jobs.lookup`)."""
    try:
        parse_job_id(text)
    except InvalidInputError:
        return False
    return True
