"""cesod's HTTP layer: ``POST /rpc`` on a threading stdlib server, checks in a fixed order.

With a TLS context (:mod:`ceso.cesod.tls`) each connection first completes the TLS handshake,
in its own thread and within ``cesod.read_timeout_s``; a client that does not (plain HTTP, an
untrusted certificate) is logged and disconnected, with nothing read. Then, for every connection,
in this order, each failure answered with a JSON-RPC error body and nothing else done:

1. client address in ``cesod.allowlist`` (before the request is even read) — 403;
2. ``POST /rpc`` — 404/405;
3. ``Content-Length`` present and within ``cesod.max_request_bytes`` — 411/413;
4. the client address within ``cesod.rate_per_address`` (:class:`~ceso.cesod.limits.RateLimiter`) — 429;
5. ``Authorization: Bearer TOKEN`` of an agent that is not revoked — 401;
6. the agent within ``cesod.rate_per_token`` — 429;
7. the body as JSON-RPC (:mod:`ceso.cesod.dispatch`) — 200 (or 204).

Refused connections and tokens are audited with the client address. One
access-log line per request (JSON: time, client, actor, HTTP status, each
call's method, id and outcome, duration). Responses close the connection.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ceso.cesod.calls import Call
from ceso.cesod.dispatch import Outcome, handle_body
from ceso.cesod.limits import ConnectionSlots, RateLimiter, Reaper, RefusalSampler
from ceso.cesod.protocol import (
    ADDRESS_NOT_ALLOWED,
    INVALID_REQUEST,
    RATE_LIMITED,
    REQUEST_TOO_LARGE,
    UNAUTHENTICATED,
    RpcError,
    response,
)
from ceso.errors import NotPermittedError

__all__ = ["CesodServer", "RpcHandler"]

access_log = logging.getLogger("ceso.cesod.access")
log = logging.getLogger(__name__)

_DRAIN_CAP = (
    64 * 1024 * 1024
)  # read and drop at most this much of a refused body (so the client sees our answer)


class CesodServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the runtime and the parsed allowlist."""

    daemon_threads = True
    #: The listen backlog (the stdlib's default is 5): a burst of connections waits to be
    #: accepted, and refused by the caps, instead of timing out in the kernel.
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], runtime: Any, *, tls: ssl.SSLContext | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.cesod
        self.networks = [ipaddress.ip_network(c, strict=False) for c in self.settings.allowlist]
        self.tls = tls
        self.slots = ConnectionSlots(self.settings.max_connections, self.settings.max_connections_per_client)
        self.reaper = Reaper()
        self.refusals = RefusalSampler()
        self.address_rates = RateLimiter(self.settings.rate_per_address, self.settings.rate_burst)
        self.token_rates = RateLimiter(self.settings.rate_per_token, self.settings.rate_burst)
        self._raw = threading.local()  # the accepted socket, for the handler to tell the reaper
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RpcHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Over the connection caps, close at once (no thread is started); else serve it."""
        if not self.slots.take(str(client_address[0])):
            from ceso.metrics.record import count_cesod_refusal

            count_cesod_refusal("too_many_connections")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.reaper.done(request)
            self.slots.give_back(str(client_address[0]))

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's own thread: the TLS handshake (if any) happens here, never in
        the accepting thread, so a client that stalls its handshake holds only its own thread.
        The whole request must arrive within ``cesod.request_deadline_s`` (:class:`Reaper`)."""
        self.reaper.watch(request, self.settings.request_deadline_s)
        self._raw.socket = request
        if self.tls is not None:
            request.settimeout(self.settings.read_timeout_s)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                # Plain HTTP, a client that does not trust the certificate, or a timeout: nothing
                # was read, so there is nothing to audit; the access log says who and why.
                access_log.info(
                    json.dumps(
                        {"client": str(client_address[0]), "tls": "handshake failed", "reason": _reason(exc)}
                    )
                )
                request.close()
                return
        super().finish_request(request, client_address)

    def allowed(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in self.networks)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or type(exc).__name__)


class RpcHandler(BaseHTTPRequestHandler):
    server: CesodServer
    server_version = "cesod"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    #: Where the calls come from, as audit records name it (the operator socket's handler: "cli").
    caller_source = "cesod"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.settings.read_timeout_s)  # a slow client cannot hold a thread
        self._started = time.monotonic()
        self._actor: str | None = None
        self._outcome = Outcome()

    @property
    def client(self) -> str:
        return str(self.client_address[0])

    # -- 1: the allowlist, before anything is read ---------------------------------------------
    def handle(self) -> None:
        if self.server.allowed(self.client):
            super().handle()
            return
        self._audit_refusal(
            "access.refused", "address_not_allowed", f"client address {self.client} is not allowed"
        )
        err = RpcError(
            ADDRESS_NOT_ALLOWED,
            f"client address {self.client} is not allowed",
            data_code="address_not_allowed",
            exit_code=3,
        )
        self._send_raw(403, "Forbidden", response(None, error=err))
        self._close_refused()

    def _close_refused(self) -> None:
        """After a refusal sent before the request was read: end our side, then read and drop what
        the client still sends, so closing does not reset the connection before it reads the answer."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            return
        self._drain(_DRAIN_CAP)

    # -- 2..5 ------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        if self.path != "/rpc":
            self._fail(
                404, RpcError(INVALID_REQUEST, "POST JSON-RPC 2.0 requests to /rpc", data_code="not_found")
            )
            return
        length = self._content_length()
        if length is None:
            return
        if self._over_rate("address_rates", self.client, length, "rate_limited_address"):
            return
        principal = self._authenticate(length)
        if principal is None:
            return
        if self._over_rate("token_rates", str(principal.actor), length, "rate_limited_token"):
            return
        body = self.rfile.read(length)
        self._request_read()
        from ceso.security.caller import Caller, bound

        call = Call(self.server.runtime, principal, self.client)
        with bound(Caller(principal, source=self.caller_source, client_addr=self.client)):
            answer = handle_body(call, body, self._outcome)
        if answer is None:
            self._send(204, None)
        else:
            self._send(200, answer)

    def do_GET(self) -> None:
        self._fail(
            405,
            RpcError(INVALID_REQUEST, "POST JSON-RPC 2.0 requests to /rpc", data_code="method_not_allowed"),
        )

    def do_PUT(self) -> None:
        self.do_GET()

    def do_DELETE(self) -> None:
        self.do_GET()

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        limit = self.server.settings.max_request_bytes
        if raw is None:
            self._fail(
                411,
                RpcError(INVALID_REQUEST, "a Content-Length header is required", data_code="length_required"),
            )
            return None
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            self._fail(
                400, RpcError(INVALID_REQUEST, f"bad Content-Length {raw!r}", data_code="invalid_request")
            )
            return None
        if length > limit:
            err = RpcError(
                REQUEST_TOO_LARGE,
                f"request body of {length} bytes is over the limit of {limit} bytes",
                data_code="request_too_large",
                limit=limit,
            )
            self._fail(413, err, drain=length)
            return None
        return length

    def _over_rate(self, limiter: str, key: str, length: int, reason: str) -> bool:
        """True (answered 429, counted, not audited) if ``key`` is over the server's ``limiter``; the
        operator socket's server has none."""
        rates: RateLimiter | None = getattr(self.server, limiter, None)
        wait = rates.take(key) if rates is not None else 0.0
        if wait <= 0:
            return False
        from ceso.metrics.record import count_cesod_refusal

        count_cesod_refusal(reason)
        retry = max(1, math.ceil(wait))
        err = RpcError(
            RATE_LIMITED,
            f"too many requests; retry in {retry} s",
            data_code="rate_limited",
            exit_code=1,
            retry_after_s=retry,
        )
        self._fail(429, err, drain=length, headers={"Retry-After": str(retry)})
        return True

    def _authenticate(self, length: int) -> Any:
        from ceso.security.principals import authenticate_token

        header = self.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise NotPermittedError(
                    "missing bearer token (send Authorization: Bearer TOKEN)", code="unauthenticated"
                )
            principal = authenticate_token(self.server.runtime.engine, token.strip())
        except NotPermittedError as exc:
            self._audit_refusal("auth.refused", "unauthenticated", exc.message)
            err = RpcError(UNAUTHENTICATED, exc.message, data_code="unauthenticated", exit_code=3)
            self._fail(401, err, drain=length, headers={"WWW-Authenticate": 'Bearer realm="cesod"'})
            return None
        self._actor = principal.actor
        return principal

    # -- output ------------------------------------------------------------------------------------
    def _fail(
        self, status: int, err: RpcError, *, drain: int = 0, headers: dict[str, str] | None = None
    ) -> None:
        self._outcome.calls.append(("-", None, str(err.data["code"])))
        if drain:
            self._drain(drain)
        self._send(status, response(None, error=err), headers)

    def _request_read(self) -> None:
        """The request is in: a long answer (``job.wait``) is not cut by the request deadline."""
        # The operator socket's server (a local peer, checked by uid) has no reaper.
        reaper, raw = (
            getattr(self.server, "reaper", None),
            getattr(getattr(self.server, "_raw", None), "socket", None),
        )
        if reaper is not None and raw is not None:
            reaper.done(raw)

    def _send(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self._request_read()
        body = b"" if document is None else json.dumps(document, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self._access(status, len(body))

    def _send_raw(
        self, status: int, reason: str, document: Any, outcome: str = "address_not_allowed"
    ) -> None:
        body = json.dumps(document).encode()
        head = (
            f"HTTP/1.0 {status} {reason}\r\nServer: cesod\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            self.wfile.write(head.encode() + body)
            self.wfile.flush()
        except OSError:
            return
        self._outcome.calls.append(("-", None, outcome))
        self._access(status, len(body))

    def _drain(self, count: int) -> None:
        """Read and drop up to ``count`` bytes, so closing does not reset the connection before the client reads."""
        left = min(count, _DRAIN_CAP)
        try:
            self.connection.settimeout(2)
            while left > 0:
                # Through rfile: parsing the headers may already have buffered part of the body.
                chunk = self.rfile.read1(min(65536, left))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            return

    def _access(self, status: int, size: int) -> None:
        line = {
            "client": self.client,
            "actor": self._actor or "-",
            "status": status,
            "calls": [{"method": m, "id": i, "outcome": o} for m, i, o in self._outcome.calls],
            "bytes": size,
            "ms": round((time.monotonic() - self._started) * 1000, 1),
        }
        access_log.info("%s", json.dumps(line, default=str))

    def _audit_refusal(self, event: str, code: str, reason: str) -> None:
        """Count every refusal; audit the first of an address per period, with the number of its
        refusals left unrecorded since its last record (:class:`~ceso.cesod.limits.RefusalSampler`)."""
        from ceso.audit.store import AuditEvent, record
        from ceso.metrics.record import count_cesod_refusal

        count_cesod_refusal(code)
        sampler = getattr(self.server, "refusals", None)  # the operator socket records every one
        skipped = sampler.admit(self.client) if sampler is not None else 0
        if skipped is None:
            return
        details: dict[str, Any] = {"code": code, "reason": reason}
        if skipped:
            details["unrecorded_since_last"] = skipped
        record(
            self.server.runtime.engine,
            AuditEvent(
                event,
                outcome="refused",
                actor="unknown",
                source="cesod",
                client_addr=self.client,
                details=details,
            ),
        )

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client, format % args)
