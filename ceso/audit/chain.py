"""How a record is hashed: SHA-256 of its canonical JSON, which includes the previous record's hash.

Canonical JSON: keys sorted, no whitespace, UTF-8, timestamps as ISO 8601 in
UTC. ``seq`` is hashed too, so a record moved to another place in the chain
no longer matches its position, and a verifier can say "reordered" rather
than merely "changed".
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

__all__ = ["HASHED_FIELDS", "canonical_json", "json_safe", "record_hash"]

HASHED_FIELDS = (
    "seq",
    "at",
    "event",
    "outcome",
    "operation",
    "actor",
    "mode",
    "source",
    "client_addr",
    "job_id",
    "host",
    "vm",
    "details",
    "prev_hash",
)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def json_safe(value: Any) -> Any:
    """``value`` as it will read back from a JSON column (so the hash stays reproducible)."""
    try:
        return json.loads(json.dumps(value, default=_default, allow_nan=False))
    except ValueError:  # NaN or infinity somewhere: keep their text
        return json.loads(
            json.dumps(value, default=_default).replace("NaN", '"NaN"').replace("Infinity", '"Infinity"')
        )


def canonical_json(fields: dict[str, Any]) -> str:
    """The canonical JSON text of a record's hashed fields (the ``hash`` itself excluded)."""
    body = {name: fields.get(name) for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def record_hash(fields: dict[str, Any]) -> str:
    """The SHA-256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()
