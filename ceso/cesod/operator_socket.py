"""cesod's second listener: the local operator on a Unix socket (see :mod:`ceso.cesod.local`).

Same JSON-RPC methods and the same handler as the agents' listener, with two
checks in place of the address allowlist and the bearer token:

1. the peer's user id (``SO_PEERCRED``) must be cesod's own — otherwise 403,
   audited, before the request is read (the socket's 0600 mode and private
   directory already keep other users out; this holds even if they are changed);
2. the caller is then the local operator (:func:`ceso.security.principals.operator_principal`),
   in ``security.operator_mode``, exactly as if the CLI had run the command itself;
   audit records name the source ``cli``.
"""

from __future__ import annotations

import os
import socket
import socketserver
import struct
from pathlib import Path
from typing import Any

from ceso.cesod.protocol import ADDRESS_NOT_ALLOWED, RpcError, response
from ceso.cesod.server import RpcHandler
from ceso.errors import ConfigError

__all__ = ["OperatorHandler", "OperatorServer", "open_operator_socket"]

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class OperatorServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threading Unix-socket server holding the runtime, like :class:`ceso.cesod.server.CesodServer`."""

    daemon_threads = True

    def __init__(self, path: Path, runtime: Any) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.cesod
        self.path = path
        super().__init__(str(path), OperatorHandler)

    def server_bind(self) -> None:
        old = os.umask(0o177)  # the socket file is created 0600: only this user may connect
        try:
            super().server_bind()
        finally:
            os.umask(old)

    def server_close(self) -> None:
        super().server_close()
        self.path.unlink(missing_ok=True)


class OperatorHandler(RpcHandler):
    """:class:`RpcHandler` for the operator socket: peer credentials instead of allowlist and token."""

    server: OperatorServer  # type: ignore[assignment]
    caller_source = "cli"

    def setup(self) -> None:
        super().setup()
        self._peer_pid, self._peer_uid, _ = _PEERCRED.unpack(
            self.connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )

    @property
    def client(self) -> str:
        return f"unix:pid={self._peer_pid},uid={self._peer_uid}"

    def handle(self) -> None:
        if self._peer_uid == os.geteuid():
            super(RpcHandler, self).handle()  # BaseHTTPRequestHandler.handle: no address allowlist here
            return
        reason = f"user id {self._peer_uid} is not cesod's ({os.geteuid()})"
        self._audit_refusal("access.refused", "not_permitted", reason)
        err = RpcError(ADDRESS_NOT_ALLOWED, reason, data_code="not_permitted", exit_code=3)
        self._send_raw(403, "Forbidden", response(None, error=err), outcome="not_permitted")
        self._close_refused()

    def _authenticate(self, length: int) -> Any:
        from ceso.security.principals import operator_principal

        principal = operator_principal(self.server.runtime.settings)
        self._actor = principal.actor
        return principal


def open_operator_socket(runtime: Any, identity: str) -> OperatorServer:
    """Bind the operator socket of configuration ``identity``.

    ConfigError if the directory is not private, another cesod already serves this
    configuration, or the socket cannot be bound (e.g. a path too long for a Unix socket).
    """
    from ceso.cesod.local import prepare_socket_dir, socket_path

    prepare_socket_dir()
    path = Path(socket_path(identity))
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a cesod that did not stop cleanly
        else:
            raise ConfigError(f"another cesod already serves this configuration on {path}")
        finally:
            probe.close()
    try:
        return OperatorServer(path, runtime)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
