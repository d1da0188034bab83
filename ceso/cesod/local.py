"""The local operator's way into a running cesod: a Unix socket only the same OS user can use.

cesod serves its JSON-RPC methods on a second listener, a Unix socket, to the
local operator: the peer's user id (``SO_PEERCRED``) must be cesod's own, and
the socket (mode 0600) sits in a private directory (mode 0700, owned by that
user). The ``ceso`` CLI submits some commands through it (see
:mod:`ceso.cli.via_cesod`): cesod already holds the imports, the database
pool, the pooled ESXi sessions and the queue connection that a new CLI
process would otherwise build for each command.

The socket's name is derived from the **configuration identity**, so a CLI
only ever finds a cesod of its own release that sees the same configuration
it would load itself: the config file (its path and contents), the default data directory
and every ``CESO_*`` variable of a setting, except cesod's and metrics' own
listeners (:data:`IDENTITY_SETTINGS`).
A CLI with another config file or database simply finds no socket and does
the work itself.

Standard library only: the CLI asks it before it loads SQL, the queue or pyVmomi.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from collections.abc import Mapping
from typing import Any

from ceso import __version__
from ceso.config_paths import default_data_dir, find_config_file
from ceso.constants import ENV_AGENT_TOKEN, ENV_NO_CESOD, ENV_PREFIX
from ceso.errors import CesoError, ConfigError

__all__ = [
    "IDENTITY_SETTINGS",
    "LocalCesodError",
    "call",
    "config_identity",
    "connect",
    "prepare_socket_dir",
    "socket_dir",
    "socket_path",
]

#: The settings whose ``CESO_*`` variables are part of the identity: every top-level setting but
#: ``cesod`` and ``metrics`` (this daemon's own listeners) and ``config_file`` (the file is hashed).
#: A unit test holds this equal to the fields of :class:`ceso.settings.Settings`.
IDENTITY_SETTINGS = (
    "database_url", "redis_url", "data_dir", "secret_store", "master_key_file", "esxi_timeout_s", "esxi_task_timeout_s",
    "host_probe_interval_s", "jobs", "locks", "backups", "security",
)  # fmt: skip


def _sets_identity(variable: str) -> bool:
    """True for ``CESO_<SETTING>`` or ``CESO_<SETTING>__…`` of an identity setting (case-insensitive,
    as the settings read them); other ``CESO_*`` variables (secrets, tokens, debug) are not settings."""
    name = variable.upper()
    if not name.startswith(ENV_PREFIX):
        return False
    field = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
    return field in IDENTITY_SETTINGS


class LocalCesodError(CesoError):
    """An error cesod answered for a forwarded command: its message, code and the CLI's exit code."""

    def __init__(self, message: str, *, code: str, exit_code: int, details: dict[str, Any] | None = None):
        super().__init__(message, code=code, details=details)
        self.exit_code = exit_code


def config_identity(config: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """A digest of what decides the configuration a process loads; None if the config file is missing
    (the caller then loads settings the usual way and reports that)."""
    env = os.environ if environ is None else environ
    try:
        path = find_config_file(config)
        contents = b""
        if path is not None:
            with open(path, "rb") as fh:
                contents = fh.read()
    except (ConfigError, OSError):
        return None
    parts: dict[str, Any] = {
        "version": __version__,  # a CLI never hands its request to a cesod of another release
        "config": os.path.realpath(path) if path is not None else None,
        "config_sha256": hashlib.sha256(contents).hexdigest(),
        "data_dir": default_data_dir(),
        "env": sorted((k.upper(), v) for k, v in env.items() if _sets_identity(k)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def socket_dir() -> str:
    """``$XDG_RUNTIME_DIR/ceso``, else ``/tmp/ceso-UID``: private to this OS user."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "ceso")
    return f"/tmp/ceso-{os.geteuid()}"  # noqa: S108 - checked private before every use


def socket_path(identity: str) -> str:
    """The socket of the cesod serving configuration ``identity``."""
    return os.path.join(socket_dir(), f"cesod-{identity[:24]}.sock")


def _private(directory: str) -> bool:
    """True if ``directory`` is a real directory of this user that nobody else can enter or write."""
    try:
        st = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def prepare_socket_dir() -> str:
    """Create the socket directory (0700) if needed; ConfigError if it exists but is not private
    (someone else could have planted a socket there to read the operator's requests)."""
    directory = socket_dir()
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    if not _private(directory):
        raise ConfigError(
            f"{directory} is not a private directory of this user (mode 0700, owner uid {os.geteuid()}); "
            "remove it or fix its owner and mode"
        )
    return directory


def connect(config: str | None) -> socket.socket | None:
    """A connection to the cesod serving this process's configuration, or None to do the work here.

    None when ``CESO_NO_CESOD`` is set, when the CLI acts as an agent (``CESO_AGENT_TOKEN``: the
    agent's own token decides, so it takes the usual path), when the directory is not private, or
    when no cesod listens on the socket.
    """
    if os.environ.get(ENV_NO_CESOD) or ENV_AGENT_TOKEN in os.environ:
        return None
    identity = config_identity(config)
    if identity is None or not _private(socket_dir()):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path(identity))
    except OSError:  # no such socket, or a stale one whose cesod has gone
        sock.close()
        return None
    return sock


def call(sock: socket.socket, method: str, params: dict[str, Any], *, timeout: float) -> Any:
    """One JSON-RPC call over ``sock`` (closed afterwards); the result, or LocalCesodError.

    OSError or ConnectionError when the connection breaks: the caller cannot know whether cesod
    acted on the request.
    """
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    head = f"POST /rpc HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    try:
        sock.settimeout(timeout)
        sock.sendall(head.encode("ascii") + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    finally:
        sock.close()
    raw = b"".join(chunks)
    _, sep, payload = raw.partition(b"\r\n\r\n")
    if not sep or not payload:
        raise ConnectionError(f"cesod closed the connection without an answer to {method}")
    answer = json.loads(payload)
    if "error" in answer:
        error = answer["error"]
        data = error.get("data") or {}
        raise LocalCesodError(
            str(error.get("message")),
            code=str(data.get("code") or "operation_failed"),
            exit_code=int(data.get("exit_code") or 1),
            details=data.get("details"),
        )
    return answer.get("result")
