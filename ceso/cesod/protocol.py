"""JSON-RPC 2.0 error objects, and ceso's error tree mapped onto them with the CLI's messages.

=========================  ======  =====================================
situation                  code    ``data.code`` (ceso's code)
=========================  ======  =====================================
malformed JSON             -32700  parse_error
not a valid request        -32600  invalid_request (batch_too_large, …)
unknown method             -32601  method_not_found
bad or unknown params      -32602  invalid_params / invalid_input / …
internal error             -32603  internal_error
operation or job failed    -32001  the error's code (exit code 1)
not permitted              -32003  not_permitted, guard_rail, … (exit 3)
not found                  -32004  not_found (exit 4)
conflict or locked         -32005  conflict, locked (exit 5)
host unreachable           -32006  host_unreachable, … (exit 6)
bad or missing token       -32010  unauthenticated (HTTP 401)
address not allowed        -32011  address_not_allowed (HTTP 403)
request too large          -32012  request_too_large (HTTP 413)
rate limited               -32013  rate_limited (HTTP 429, Retry-After)
=========================  ======  =====================================

``data`` also carries ``exit_code``: what the CLI would have exited with.
"""

from __future__ import annotations

from typing import Any

from ceso.errors import CesoError

__all__ = ["RpcError", "error_object", "from_ceso_error", "response"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHENTICATED = -32010
ADDRESS_NOT_ALLOWED = -32011
REQUEST_TOO_LARGE = -32012
RATE_LIMITED = -32013

_BY_EXIT = {1: -32001, 2: INVALID_PARAMS, 3: -32003, 4: -32004, 5: -32005, 6: -32006}


class RpcError(Exception):
    """A JSON-RPC error to return as is."""

    def __init__(self, code: int, message: str, *, data_code: str, exit_code: int = 2, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = {"code": data_code, "exit_code": exit_code, **extra}


def from_ceso_error(exc: CesoError) -> RpcError:
    """The JSON-RPC error of a ceso error: same message as the CLI prints, code by exit code."""
    from ceso.security.redact import redact, redact_text

    extra = {"details": redact(exc.details)} if exc.details else {}
    return RpcError(
        _BY_EXIT.get(exc.exit_code, -32001),
        redact_text(exc.message),
        data_code=exc.code,
        exit_code=exc.exit_code,
        **extra,
    )


def error_object(err: RpcError) -> dict[str, Any]:
    return {"code": err.code, "message": err.message, "data": err.data}


def response(request_id: Any, *, result: Any = None, error: RpcError | None = None) -> dict[str, Any]:
    """A response object (``result`` or ``error``, never both)."""
    if error is not None:
        return {"jsonrpc": "2.0", "error": error_object(error), "id": request_id}
    return {"jsonrpc": "2.0", "result": result, "id": request_id}
