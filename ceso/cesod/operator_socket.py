"""cesod's second listener: the local operator on a Unix socket (see :mod:`ceso.cesod.local`).

Same JSON-RPC methods, the same event loop and the same request handling as the agents' listener
(:mod:`ceso.cesod.server`), with two checks in place of the address allowlist and the bearer token:

1. the peer's user id (``SO_PEERCRED``) must be cesod's own — otherwise 403,
   audited, before the request is read (the socket's 0600 mode and private
   directory already keep other users out; this holds even if they are changed);
2. the caller is then the local operator (:func:`ceso.security.principals.operator_principal`),
   in ``security.operator_mode``, exactly as if the CLI had run the command itself;
   audit records name the source ``cli``.

No connection caps, rate limits or request deadline apply here: the peer is this OS user.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ceso.errors import ConfigError

__all__ = ["OperatorSocket", "open_operator_socket"]


@dataclass
class OperatorSocket:
    """The bound, listening operator socket and its path (removed by :meth:`close`)."""

    sock: socket.socket
    path: Path

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


def _bind(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket file is created 0600: only this user may connect
    try:
        sock.bind(str(path))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    return sock


def open_operator_socket(identity: str) -> OperatorSocket:
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
        return OperatorSocket(_bind(path), path)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
