"""cesod's HTTP layer: ``POST /rpc`` as an ASGI application under uvicorn (h11), checks in a fixed order.

One asyncio event loop serves every connection (agents over TCP, optionally TLS, and the local
operator's Unix socket, :mod:`ceso.cesod.operator_socket`); a connection costs a few kilobytes, not
a thread. Blocking work (SQL, Redis, submitting jobs, audit records) runs in one bounded thread
pool of ``cesod.worker_threads``, so cesod's thread count does not grow with its traffic.

Per connection, before any request is read (:class:`CesodProtocol`, :class:`CesodTLS`):

1. the connection caps (``cesod.max_connections``, ``cesod.max_connections_per_client``): a
   connection over either is closed at once and counted;
2. with TLS, the handshake, within ``cesod.read_timeout_s``; a client that does not complete it
   (plain HTTP, an untrusted certificate, a stall) is logged ``"tls": "handshake failed"`` and
   disconnected, with nothing read;
3. the client address in ``cesod.allowlist`` (on the operator socket: the peer's user id) — 403,
   audited by sample.

Then, per request, each failure answered with a JSON-RPC error body and nothing else done
(:class:`RpcApp`):

4. ``POST /rpc`` — 404/405;
5. ``Content-Length`` present (or a chunked body) and within ``cesod.max_request_bytes`` — 411/413;
6. the client address within ``cesod.rate_per_address`` — 429;
7. ``Authorization: Bearer TOKEN`` of an agent that is not revoked — 401;
8. the agent within ``cesod.rate_per_token`` — 429;
9. the body, read incrementally and cut at ``cesod.max_request_bytes`` (413), as JSON-RPC
   (:mod:`ceso.cesod.dispatch`) — 200 (or 204).

The whole request (TLS handshake, headers, body) must arrive within ``cesod.request_deadline_s``
of the connection (or of the first byte of a later request on a kept-alive connection); a client
that drips it is disconnected. Headers are capped at ``cesod.max_header_bytes``. A connection is
kept alive between requests for ``cesod.keep_alive_s``; refusals close it. One access-log line per
request (JSON: time, client, actor, HTTP status, each call's method, id and outcome, duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import socket
import ssl
import struct
import time
from asyncio import sslproto
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ceso.cesod.calls import Call
from ceso.cesod.dispatch import Outcome, handle_body
from ceso.cesod.limits import ConnectionSlots, RateLimiter, RefusalSampler
from ceso.cesod.protocol import (
    ADDRESS_NOT_ALLOWED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    RATE_LIMITED,
    REQUEST_TOO_LARGE,
    UNAUTHENTICATED,
    RpcError,
    response,
)
from ceso.errors import NotPermittedError

__all__ = ["CesodProtocol", "CesodState", "CesodTLS", "RpcApp"]

access_log = logging.getLogger("ceso.cesod.access")
log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
T = TypeVar("T")

#: Read and drop at most this much of a refused body (so the client sees our answer), for at most
#: :data:`_DRAIN_S` seconds.
_DRAIN_CAP = 64 * 1024 * 1024
_DRAIN_S = 5.0
#: A refused connection is closed this long after its answer, or when the client closes first.
_LINGER_S = 2.0
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class CesodState:
    """What every connection of one cesod shares: the runtime, the caps, the rate limiters, the
    sampler of audited refusals and the bounded pool for blocking work."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.cesod
        self.networks = [ipaddress.ip_network(c, strict=False) for c in self.settings.allowlist]
        self.slots = ConnectionSlots(self.settings.max_connections, self.settings.max_connections_per_client)
        self.refusals = RefusalSampler()
        self.address_rates = RateLimiter(self.settings.rate_per_address, self.settings.rate_burst)
        self.token_rates = RateLimiter(self.settings.rate_per_token, self.settings.rate_burst)
        self.pool = ThreadPoolExecutor(max_workers=self.settings.worker_threads, thread_name_prefix="cesod")
        #: Set when cesod stops: a connection accepted just before is closed, not served.
        self.stopping = False

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the bounded pool (the caller's context variables go with it)."""
        import contextvars

        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.pool, context.run, fn, *args)

    def allowed(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in self.networks)

    def audit_refusal(self, client: str, event: str, code: str, reason: str) -> None:
        """Count every refusal; audit the first of an address per period, with the number of its
        refusals left unrecorded since its last record (:class:`~ceso.cesod.limits.RefusalSampler`).
        Called in the pool (it writes SQL)."""
        from ceso.audit.store import AuditEvent, record
        from ceso.metrics.record import count_cesod_refusal

        count_cesod_refusal(code)
        skipped = self.refusals.admit(client)
        if skipped is None:
            return
        details: dict[str, Any] = {"code": code, "reason": reason}
        if skipped:
            details["unrecorded_since_last"] = skipped
        record(
            self.runtime.engine,
            AuditEvent(
                event, outcome="refused", actor="unknown", source="cesod", client_addr=client, details=details
            ),
        )


class Connection:
    """One accepted connection: who it is, its slot under the caps, and its request deadline."""

    def __init__(self, state: CesodState, operator: bool) -> None:
        self.state = state
        self.operator = operator
        self.client = "-"
        self.peer_uid: int | None = None
        self._slot: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Take a slot (TCP) or read the peer's credentials (Unix socket); False: closed at once."""
        self._transport = transport
        if self.state.stopping:
            transport.close()
            return False
        if self.operator:
            sock = transport.get_extra_info("socket")
            pid, uid, _ = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
            self.client, self.peer_uid = f"unix:pid={pid},uid={uid}", uid
            return True
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if peer else "-"
        if not self.state.slots.take(self.client):
            from ceso.metrics.record import count_cesod_refusal

            count_cesod_refusal("too_many_connections")
            transport.close()
            return False
        self._slot = self.client
        self.start_deadline()
        return True

    def start_deadline(self) -> None:
        """The request must be in within ``cesod.request_deadline_s`` from now (the operator
        socket, a local peer checked by uid, has no deadline)."""
        if self.operator or self._deadline is not None or self._transport is None:
            return
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.state.settings.request_deadline_s, self._cut)

    def request_read(self) -> None:
        """The request is in: a long answer (``job.wait``) is not cut by the deadline."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cut(self) -> None:
        self._deadline = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def release(self) -> None:
        self.request_read()
        if self._slot is not None:
            self.state.slots.give_back(self._slot)
            self._slot = None


class CesodProtocol(H11Protocol):
    """uvicorn's h11 protocol with cesod's connection checks (caps, deadline, allowlist or peer
    user id) and :class:`RpcApp` bound to the connection."""

    def __init__(self, *args: Any, state: CesodState, operator: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.cesod = Connection(state, operator)
        self._admitted = False  # by CesodTLS already, for a TLS connection
        self._refused = False
        self._between_requests = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self._admitted and not self.cesod.admit(transport):
            self._refused = True
            return
        self._admitted = True
        super().connection_made(transport)
        self.app = RpcApp(self.cesod)
        refusal = self._refusal()
        if refusal is not None:
            self._refuse(transport, *refusal)

    def _refusal(self) -> tuple[str, str, str, RpcError] | None:
        """(audit event, outcome, reason, error) if this peer may not talk to cesod at all."""
        conn = self.cesod
        if conn.operator:
            if conn.peer_uid == os.geteuid():
                return None
            reason = f"user id {conn.peer_uid} is not cesod's ({os.geteuid()})"
            err = RpcError(ADDRESS_NOT_ALLOWED, reason, data_code="not_permitted", exit_code=3)
            return "access.refused", "not_permitted", reason, err
        if conn.state.allowed(conn.client):
            return None
        reason = f"client address {conn.client} is not allowed"
        err = RpcError(ADDRESS_NOT_ALLOWED, reason, data_code="address_not_allowed", exit_code=3)
        return "access.refused", "address_not_allowed", reason, err

    def _refuse(
        self, transport: asyncio.Transport, event: str, code: str, reason: str, err: RpcError
    ) -> None:
        """Refuse the connection before reading anything: audited (by sample) first, then answered."""
        self._refused = True
        self.cesod.request_read()
        task = self.loop.create_task(self._answer_refused(transport, event, code, reason, err))
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_log_failure)
        self.tasks.add(task)

    async def _answer_refused(
        self, transport: asyncio.Transport, event: str, code: str, reason: str, err: RpcError
    ) -> None:
        """403, then end our side and drop what the client still sends (so closing does not reset
        the connection before it reads the answer); closed when the client closes, or soon after."""
        started, conn = time.monotonic(), self.cesod
        await conn.state.blocking(conn.state.audit_refusal, conn.client, event, code, reason)
        if transport.is_closing():
            return
        body = json.dumps(response(None, error=err)).encode()
        head = (
            f"HTTP/1.0 403 Forbidden\r\nServer: cesod\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        transport.write(head.encode() + body)
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(_LINGER_S, transport.close)
        _access(conn.client, None, 403, len(body), [("-", None, code)], started)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped
        if self._between_requests:  # a new request on a kept-alive connection: a new deadline
            self._between_requests = False
            self.cesod.start_deadline()
        super().data_received(data)

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()

    def on_response_complete(self) -> None:
        self._between_requests = True
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cesod.release()
        if not self._admitted:
            return  # closed by the caps before anything started
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """Not HTTP (or headers over ``cesod.max_header_bytes``): a JSON-RPC error, then close."""
        self.cesod.request_read()
        err = RpcError(
            INVALID_REQUEST, "malformed HTTP request or headers too large", data_code="invalid_request"
        )
        body = json.dumps(response(None, error=err)).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        with contextlib.suppress(h11.LocalProtocolError):
            self.transport.write(
                self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
            )
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        _access(self.cesod.client, None, 400, len(body), [("-", None, "invalid_request")], time.monotonic())
        self.transport.close()


class CesodTLS(sslproto.SSLProtocol):
    """asyncio's TLS layer for one agent connection: the caps and the deadline are applied before
    the handshake, and a handshake that fails (or times out) is logged with the client's address."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: CesodProtocol, context: ssl.SSLContext) -> None:
        timeout = app.cesod.state.settings.read_timeout_s
        no_waiter: Any = None  # accepted connections have nobody waiting for the handshake
        super().__init__(loop, app, context, no_waiter, server_side=True, ssl_handshake_timeout=timeout)
        self._cesod_app = app
        self._admitted = self._shaken = False
        self._why: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._cesod_app.cesod.admit(transport):
            return
        self._admitted = self._cesod_app._admitted = True
        super().connection_made(transport)

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        self._shaken = handshake_exc is None
        self._why = handshake_exc
        super()._on_handshake_complete(handshake_exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        conn = self._cesod_app.cesod
        conn.release()
        if not self._admitted:
            return
        if not self._shaken:
            # Plain HTTP, a client that does not trust the certificate, or a timeout: nothing was
            # read, so there is nothing to audit; the access log says who and why.
            why = self._why or exc
            reason = str(getattr(why, "reason", None) or (type(why).__name__ if why else "closed"))
            access_log.info(json.dumps({"client": conn.client, "tls": "handshake failed", "reason": reason}))
        super().connection_lost(exc)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("cesod: refusing a connection failed: %s", task.exception())


def _access(
    client: str, actor: str | None, status: int, size: int, calls: list[tuple[str, Any, str]], started: float
) -> None:
    line = {
        "client": client,
        "actor": actor or "-",
        "status": status,
        "calls": [{"method": m, "id": i, "outcome": o} for m, i, o in calls],
        "bytes": size,
        "ms": round((time.monotonic() - started) * 1000, 1),
    }
    access_log.info("%s", json.dumps(line, default=str))


class _AnsweredError(Exception):
    """A request answered with an error before its body was used."""


class RpcApp:
    """The ASGI application of one connection (:class:`Connection` says who it is)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.state = conn.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - uvicorn's lifespan is off
            return
        await _Request(self, scope, receive, send).run()


class _Request:
    def __init__(self, app: RpcApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.conn, self.state = app.conn, app.state
        self.scope, self.receive, self.send = scope, receive, send
        self.headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            self.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.started = time.monotonic()
        self.actor: str | None = None
        self.outcome = Outcome()
        self.length: int | None = None

    async def run(self) -> None:
        try:
            await self._serve()
        except _AnsweredError:
            return
        except Exception as exc:  # e.g. the database unreachable while checking a token
            # The exception's type only: its text may quote what the client sent.
            log.error("cesod: request from %s failed: %s", self.conn.client, type(exc).__name__)
            err = RpcError(
                INTERNAL_ERROR, f"internal error ({type(exc).__name__})", data_code="internal_error"
            )
            self.outcome.calls.append(("-", None, "internal_error"))
            with contextlib.suppress(Exception):
                await self._send(500, response(None, error=err), {"Connection": "close"})

    async def _serve(self) -> None:
        settings = self.state.settings
        size = sum(len(k) + len(v) + 4 for k, v in self.scope["headers"])
        if size > settings.max_header_bytes:  # h11 itself only caps headers still arriving
            await self._fail(
                431,
                RpcError(
                    INVALID_REQUEST,
                    f"request headers of {size} bytes are over the limit of {settings.max_header_bytes} bytes",
                    data_code="headers_too_large",
                ),
            )
        if self.scope["method"] != "POST":
            await self._fail(
                405,
                RpcError(
                    INVALID_REQUEST, "POST JSON-RPC 2.0 requests to /rpc", data_code="method_not_allowed"
                ),
            )
        if self.scope["path"] != "/rpc":
            await self._fail(
                404, RpcError(INVALID_REQUEST, "POST JSON-RPC 2.0 requests to /rpc", data_code="not_found")
            )
        self.length = await self._content_length(settings.max_request_bytes)
        if not self.conn.operator:
            await self._rate("address_rates", self.conn.client, "rate_limited_address")
        principal = await self._authenticate()
        if not self.conn.operator:
            await self._rate("token_rates", str(principal.actor), "rate_limited_token")
        body = await self._body(settings.max_request_bytes)
        self.conn.request_read()
        answer = await self.state.blocking(self._dispatch, principal, body)
        if answer is None:
            await self._send(204, None)
        else:
            await self._send(200, answer)

    def _dispatch(self, principal: Any, body: bytes) -> Any:
        from ceso.security.caller import Caller, bound

        source = "cli" if self.conn.operator else "cesod"
        call = Call(self.state.runtime, principal, self.conn.client)
        with bound(Caller(principal, source=source, client_addr=self.conn.client)):
            return handle_body(call, body, self.outcome)

    async def _content_length(self, limit: int) -> int | None:
        raw = self.headers.get("content-length")
        if raw is None:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                return None  # read incrementally, cut at the limit
            await self._fail(
                411,
                RpcError(INVALID_REQUEST, "a Content-Length header is required", data_code="length_required"),
            )
        assert raw is not None
        length = int(raw)  # h11 has checked it is a non-negative integer
        if length > limit:
            err = RpcError(
                REQUEST_TOO_LARGE,
                f"request body of {length} bytes is over the limit of {limit} bytes",
                data_code="request_too_large",
                limit=limit,
            )
            await self._fail(413, err)
        return length

    async def _body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _AnsweredError  # the client went away (or was cut at the deadline)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                err = RpcError(
                    REQUEST_TOO_LARGE,
                    f"request body is over the limit of {limit} bytes",
                    data_code="request_too_large",
                    limit=limit,
                )
                await self._fail(413, err)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _rate(self, limiter: str, key: str, reason: str) -> None:
        """Answer 429 (counted, not audited) if ``key`` is over the ``limiter``."""
        rates: RateLimiter = getattr(self.state, limiter)
        wait = rates.take(key)
        if wait <= 0:
            return
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
        await self._fail(429, err, headers={"Retry-After": str(retry)})

    async def _authenticate(self) -> Any:
        if self.conn.operator:
            from ceso.security.principals import operator_principal

            principal = operator_principal(self.state.runtime.settings)
            self.actor = principal.actor
            return principal
        header = self.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise NotPermittedError(
                    "missing bearer token (send Authorization: Bearer TOKEN)", code="unauthenticated"
                )
            principal = await self.state.blocking(
                _authenticate_token, self.state.runtime.engine, token.strip()
            )
        except NotPermittedError as exc:
            await self.state.blocking(
                self.state.audit_refusal, self.conn.client, "auth.refused", "unauthenticated", exc.message
            )
            err = RpcError(UNAUTHENTICATED, exc.message, data_code="unauthenticated", exit_code=3)
            await self._fail(401, err, headers={"WWW-Authenticate": 'Bearer realm="cesod"'})
        self.actor = principal.actor
        return principal

    async def _fail(self, status: int, err: RpcError, *, headers: dict[str, str] | None = None) -> None:
        """Answer ``err`` and close the connection; raises :class:`_AnsweredError` to end the request."""
        self.outcome.calls.append(("-", None, str(err.data["code"])))
        await self._drain()
        await self._send(status, response(None, error=err), {**(headers or {}), "Connection": "close"})
        raise _AnsweredError

    async def _drain(self) -> None:
        """Read and drop what is left of the body (at most :data:`_DRAIN_CAP` bytes, :data:`_DRAIN_S`
        seconds), so closing does not reset the connection before the client reads the answer."""
        left = _DRAIN_CAP
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_S):
                while left > 0:
                    message = await self.receive()
                    if message["type"] != "http.request":
                        return
                    left -= len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return

    async def _send(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self.conn.request_read()
        body = b"" if document is None else json.dumps(document, default=str).encode()
        raw = [
            (b"server", b"cesod"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await self.send({"type": "http.response.start", "status": status, "headers": raw})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})
        _access(self.conn.client, self.actor, status, len(body), self.outcome.calls, self.started)


def _authenticate_token(engine: Any, token: str) -> Any:
    from ceso.security.principals import authenticate_token

    return authenticate_token(engine, token)
