"""The documented ``--json`` shape of a job, from its column values.

One definition for both readers: the SQLAlchemy row (:func:`ceso.jobs.store.job_to_dict`)
and the driver's row (:mod:`ceso.jobs.direct`). Light: no SQL toolkit imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COLUMNS", "TIMESTAMPS", "job_dict"]

TIMESTAMPS = ("created_at", "started_at", "finished_at", "heartbeat_at")
#: The columns the shape is made from, in the shape's order (error_* become ``error``).
COLUMNS = (
    "id", "kind", "host", "target", "state", "progress", "current_step", "steps", "params", "result",
    "error_code", "error_message", "idempotency_key", "actor", "attempts", "cancel_requested", *TIMESTAMPS,
)  # fmt: skip


def job_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """The job's ``--json`` object from ``values`` of :data:`COLUMNS` (JSON columns decoded,
    timestamps already as ISO 8601 strings or None)."""
    shaped: dict[str, Any] = {}
    for name in COLUMNS:
        if name == "error_code":
            code = values["error_code"]
            shaped["error"] = {"code": code, "message": values["error_message"]} if code else None
        elif name != "error_message":
            shaped[name] = values[name]
    shaped["cancel_requested"] = bool(shaped["cancel_requested"])
    return shaped
