"""What a caller asks of the job queue: :class:`JobRequest`, built by the request builders.

Plain data with no imports beyond the standard library, so building a request
costs nothing; :func:`ceso.jobs.submit.submit_job` is what records and queues it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobRequest"]


@dataclass(frozen=True)
class JobRequest:
    """A change to make. ``params`` must hold no secret: it is stored in SQL."""

    kind: str
    host: str
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    actor: str = "operator"
