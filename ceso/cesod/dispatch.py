"""JSON-RPC 2.0 over one request body: single calls, batches and notifications.

:func:`handle_body` never raises: every problem becomes an error response.

- A **notification** (no ``id``) is run but not answered, as the specification requires (the
  server MUST NOT reply to one); a body of notifications only gets no body at all (HTTP 204).
  A job method sent as a notification still queues its job, audited as any other; the caller
  simply does not learn its id (``job.list`` shows it, and an ``idempotency_key`` finds it again).
  A notification that is refused (bad params, not permitted) is not answered either, and changes
  nothing; its outcome is in the access log.
- A **batch** (an array) runs its calls in order, at most ``cesod.max_batch`` of them, and answers
  an array without the notifications' answers; an empty array is one Invalid Request error, a
  batch over the cap one ``batch_too_large`` error (nothing run).
- An ``id`` is a string of at most :data:`MAX_ID_LENGTH` characters, an integer within 64 bits,
  or null; anything else (a fraction, an object, a 400-digit number) is an Invalid Request
  answered with id null.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ceso.cesod.calls import Call
from ceso.cesod.hooks import notify_call
from ceso.cesod.limits import loads
from ceso.cesod.methods import call_method
from ceso.cesod.protocol import INVALID_REQUEST, PARSE_ERROR, RpcError, response

__all__ = ["Outcome", "handle_body"]

_ABSENT = object()
#: The longest string ``id`` answered.
MAX_ID_LENGTH = 128


@dataclass
class Outcome:
    """What happened, for the access log: one ``(method, id, "ok" | data.code)`` per call."""

    calls: list[tuple[str, Any, str]] = field(default_factory=list)


def _valid_id(value: Any) -> bool:
    """A string (up to :data:`MAX_ID_LENGTH`), an integer within 64 bits, or null: ids are echoed
    back and logged, so they are bounded like any other input."""
    if value is None:
        return True
    if isinstance(value, str):
        return len(value) <= MAX_ID_LENGTH
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _invalid(message: str, code: str = "invalid_request") -> RpcError:
    return RpcError(INVALID_REQUEST, message, data_code=code)


def _one(call: Call, request: Any, outcome: Outcome) -> dict[str, Any] | None:
    if not isinstance(request, dict):
        outcome.calls.append(("-", None, "invalid_request"))
        return response(None, error=_invalid("a request must be a JSON object"))
    request_id = request.get("id", _ABSENT)
    answer_id = None if request_id is _ABSENT else request_id
    method = request.get("method")
    problem = None
    if request.get("jsonrpc") != "2.0":
        problem = _invalid('"jsonrpc" must be "2.0"')
    elif not isinstance(method, str) or not method:
        problem = _invalid('"method" must be a non-empty string')
    elif request_id is not _ABSENT and not _valid_id(request_id):
        problem = _invalid(f'"id" must be a string of at most {MAX_ID_LENGTH} characters, an integer or null')
        answer_id = None
    elif set(request) - {"jsonrpc", "method", "params", "id"}:
        problem = _invalid(
            f"unknown member {sorted(set(request) - {'jsonrpc', 'method', 'params', 'id'})[0]!r}"
        )
    if problem is not None:
        outcome.calls.append((str(method or "-"), answer_id, str(problem.data["code"])))
        return response(answer_id, error=problem)
    started = time.monotonic()
    try:
        result = call_method(call, str(method), request.get("params"))
    except RpcError as err:
        outcome.calls.append((str(method), answer_id, str(err.data["code"])))
        notify_call(call.principal, str(method), str(err.data["code"]), time.monotonic() - started)
        return None if request_id is _ABSENT else response(answer_id, error=err)
    outcome.calls.append((str(method), answer_id, "ok"))
    notify_call(call.principal, str(method), "ok", time.monotonic() - started)
    return None if request_id is _ABSENT else response(answer_id, result=result)


def handle_body(call: Call, body: bytes, outcome: Outcome) -> Any:
    """The response document for ``body`` (an object, a list, or None for notifications only)."""
    try:
        payload = loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        outcome.calls.append(("-", None, "parse_error"))
        return response(None, error=RpcError(PARSE_ERROR, f"malformed JSON: {exc}", data_code="parse_error"))
    if isinstance(payload, list):
        limit = call.runtime.settings.cesod.max_batch
        if not payload:
            outcome.calls.append(("-", None, "invalid_request"))
            return response(None, error=_invalid("an empty batch is not a request"))
        if len(payload) > limit:
            outcome.calls.append(("-", None, "batch_too_large"))
            return response(
                None,
                error=_invalid(
                    f"a batch of {len(payload)} calls is over the limit of {limit}", "batch_too_large"
                ),
            )
        answers = [a for a in (_one(call, item, outcome) for item in payload) if a is not None]
        return answers or None
    return _one(call, payload, outcome)
