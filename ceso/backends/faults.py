"""Translate pyVmomi, socket and TLS exceptions into ceso's error tree.

The one place that knows vSphere fault names. ``translate`` never raises; it
returns the CesoError to raise ``from`` the original.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any

from ceso.errors import (
    AuthenticationError,
    CesoError,
    ConflictError,
    HostUnreachableError,
    InvalidInputError,
    NotFoundError,
    NotPermittedError,
    OperationError,
    ThumbprintMismatchError,
    TransientError,
)

__all__ = ["fault_name", "translate"]

_CONFLICT = {
    "DuplicateName",
    "FileAlreadyExists",
    "InvalidPowerState",
    "InvalidState",
    "TaskInProgress",
    "ConcurrentAccess",
    "AlreadyExists",
}
_NOT_FOUND = {"FileNotFound", "ManagedObjectNotFound", "NotFound", "InvalidDatastorePath"}
_BAD_INPUT = {
    "InvalidArgument",
    "InvalidName",
    "InvalidRequest",
    "InvalidType",
    "InvalidDeviceSpec",
    "InvalidVmConfig",
    "InvalidController",
}
_TRANSIENT = {"NotAuthenticated", "HostCommunication", "HostNotConnected", "RequestCanceled"}
_NO_SPACE = {"NoDiskSpace", "InsufficientStorageSpace", "CannotCreateFile", "FileFault"}


def fault_name(exc: BaseException) -> str:
    """Short vSphere fault name (``InvalidLogin``) or the Python class name."""
    name = type(exc).__name__
    return name.rsplit(".", 1)[-1]


def _fault_message(exc: Any) -> str:
    msg = getattr(exc, "msg", None) or getattr(exc, "faultMessage", None) or str(exc)
    if isinstance(msg, list):
        msg = "; ".join(str(m) for m in msg)
    return str(msg).strip().splitlines()[0] if str(msg).strip() else fault_name(exc)


def translate(exc: BaseException, *, host: str, action: str) -> CesoError:  # noqa: PLR0911, PLR0912
    """Map ``exc`` raised while doing ``action`` on ``host`` to a CesoError."""
    if isinstance(exc, CesoError):
        return exc
    name = fault_name(exc)
    where = f"{action} on host {host}"
    if name in ("ThumbprintMismatchException", "CertificatePinError"):
        return ThumbprintMismatchError(
            f"TLS certificate of host {host} does not match the pinned thumbprint "
            "(re-add the host with the new fingerprint if the certificate was renewed)"
        )
    if isinstance(exc, ssl.SSLError):
        return HostUnreachableError(f"{where}: TLS error: {exc}")
    if isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
        return TransientError(f"{where}: connection lost ({name})", code="connection_lost")
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror, TimeoutError, socket.timeout, OSError)):
        return HostUnreachableError(f"{where}: host unreachable: {exc}")
    if isinstance(exc, http.client.HTTPException):
        return TransientError(f"{where}: HTTP error: {exc}", code="http_error")
    if name == "InvalidLogin":
        return AuthenticationError(f"{where}: login refused: wrong user name or password")
    if name == "NoPermission":
        return NotPermittedError(f"{where}: the ESXi user lacks the privilege: {_fault_message(exc)}")
    if name == "RestrictedVersion":
        return NotPermittedError(
            f"{where}: the host's license makes the API read-only ({_fault_message(exc)})",
            code="api_read_only",
        )
    if name == "NotSupported":
        return OperationError(
            f"{where}: not supported by this host: {_fault_message(exc)}", code="not_supported"
        )
    if name in _TRANSIENT:
        return TransientError(f"{where}: {name}: {_fault_message(exc)}", code="session_lost")
    if name in _CONFLICT:
        return ConflictError(f"{where}: {name}: {_fault_message(exc)}")
    if name in _NOT_FOUND:
        return NotFoundError(f"{where}: {name}: {_fault_message(exc)}")
    if name in _BAD_INPUT:
        return InvalidInputError(f"{where}: {name}: {_fault_message(exc)}", code="host_refused_input")
    if name in _NO_SPACE:
        # CannotCreateFile and FileFault name no cause (a full datastore gives them too): say so.
        hint = "" if name in ("NoDiskSpace", "InsufficientStorageSpace") else " (is the datastore full?)"
        return OperationError(f"{where}: {name}: {_fault_message(exc)}{hint}", code="datastore_error")
    return OperationError(f"{where}: {name}: {_fault_message(exc)}", code="esxi_fault")
