"""Run cesod's listeners on one asyncio event loop under uvicorn, and stop them gracefully.

:class:`CesodServer` is uvicorn's ``Server`` with cesod's own listeners (sockets bound before the
loop starts, so a taken port is one clear error): the agents' TCP socket, wrapped in
:class:`~ceso.cesod.server.CesodTLS` when cesod has a certificate, and the local operator's Unix
socket. SIGTERM or SIGINT stops accepting, closes idle kept-alive connections, and lets requests in
flight finish for up to ``cesod.shutdown_grace_s`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn

from ceso.cesod.server import CesodProtocol, CesodState, CesodTLS

__all__ = ["CesodServer", "bind_tcp"]

#: The listen backlog: a burst of connections waits to be accepted (and refused by the caps)
#: instead of timing out in the kernel.
BACKLOG = 128


async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise RuntimeError("cesod binds its application per connection")


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (OSError if it cannot be bound)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class CesodServer(uvicorn.Server):
    """uvicorn's server loop, graceful shutdown and keep-alive handling, over cesod's listeners."""

    def __init__(
        self,
        runtime: Any,
        tcp: socket.socket,
        *,
        tls: ssl.SSLContext | None = None,
        operator: socket.socket | None = None,
    ) -> None:
        settings = runtime.settings.cesod
        config = uvicorn.Config(
            _no_app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,  # cesod writes its own access log (ceso.cesod.access)
            proxy_headers=False,  # the client address is the peer's: no X-Forwarded-For
            server_header=False,
            h11_max_incomplete_event_size=settings.max_header_bytes,
            timeout_keep_alive=settings.keep_alive_s,
            timeout_graceful_shutdown=settings.shutdown_grace_s,
            backlog=BACKLOG,
        )
        super().__init__(config)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self.state = CesodState(runtime)
        self.tcp, self.tls, self.operator = tcp, tls, operator

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def _protocol(self, *, operator: bool) -> CesodProtocol:
        return CesodProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state={},
            _loop=asyncio.get_running_loop(),
            state=self.state,
            operator=operator,
        )

    def _agent_protocol(self) -> asyncio.BaseProtocol:
        app = self._protocol(operator=False)
        if self.tls is None:
            return app
        return CesodTLS(asyncio.get_running_loop(), app, self.tls)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.servers = [await loop.create_server(self._agent_protocol, sock=self.tcp, backlog=BACKLOG)]
        if self.operator is not None:
            self.servers.append(
                await loop.create_unix_server(
                    lambda: self._protocol(operator=True), sock=self.operator, backlog=BACKLOG
                )
            )
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.state.stopping = True
        await super().shutdown(sockets)
        self.state.pool.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT start a graceful stop; a second SIGINT forces it. Unlike uvicorn's own,
        the signal is not raised again afterwards: cesod exits 0 after a clean stop."""

        def handle(sig: int, _frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

        original = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
