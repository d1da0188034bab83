"""Translate paramiko, SFTP and socket exceptions into ceso's error tree.

The one place that knows paramiko's exception classes: none escapes untranslated. ``translate``
never raises; it returns the CesoError to raise ``from`` the original, with any
secret the caller names scrubbed from the message::

    paramiko / socket / SFTP                     ceso
    ─────────────────────────────────────────    ───────────────────────────────
    AuthenticationException (and subclasses)     AuthenticationError      exit 6
    BadHostKeyException                          ThumbprintMismatchError  exit 6
    NoValidConnectionsError, refused, DNS,       HostUnreachableError     exit 6
      timeouts, other OSError while connecting
    ChannelException, SSHException, EOFError,    TransientError           exit 1
      reset/broken pipe (connection lost)
    SFTP: FileNotFoundError / PermissionError    NotFoundError / NotPermittedError
    SFTP: no space left                          OperationError (datastore_error)
    other OSError on an open connection          OperationError (ssh_error)
    key file unreadable (UnknownKeyType, bad     InvalidInputError        exit 2
      PEM, wrong passphrase)
    anything else                                OperationError (ssh_error)
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from ceso.errors import (
    AuthenticationError,
    CesoError,
    HostUnreachableError,
    InvalidInputError,
    NotFoundError,
    NotPermittedError,
    OperationError,
    ThumbprintMismatchError,
    TransientError,
)

__all__ = ["redact", "translate"]

REDACTED = "<redacted>"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-trivial secret value replaced by ``<redacted>``."""
    for secret in secrets:
        if secret and len(secret) >= 4:  # a 1-3 character "secret" would shred ordinary words
            text = text.replace(secret, REDACTED)
    return text


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # some paramiko exceptions' __str__ fail when built without their fields
        text = ""
    return text.splitlines()[0][:300] if text else type(exc).__name__


def translate(  # noqa: PLR0911, PLR0912
    exc: BaseException, *, host: str, action: str, secrets: Iterable[str] = (), connecting: bool = False
) -> CesoError:
    """Map ``exc`` raised while doing ``action`` on ``host`` over SSH to a CesoError.

    ``connecting`` says the error came while opening the connection: a plain
    OSError then means the host is unreachable; on an open connection (an SFTP
    failure, say) it means the operation failed.
    """
    if isinstance(exc, CesoError):
        return exc
    import paramiko

    where = f"{action} on host {host} (ssh)"
    detail = redact(_first_line(exc), secrets)
    if isinstance(exc, paramiko.PasswordRequiredException):
        return InvalidInputError(f"{where}: the SSH private key is encrypted; store an unencrypted key")
    if isinstance(exc, paramiko.AuthenticationException):
        return AuthenticationError(f"{where}: login refused: wrong SSH user, key or password ({detail})")
    if isinstance(exc, paramiko.BadHostKeyException):
        return ThumbprintMismatchError(
            f"{where}: the host key is not the pinned one", code="ssh_host_key_mismatch"
        )
    if isinstance(exc, paramiko.ChannelException):
        return TransientError(f"{where}: the host refused a new channel ({detail})", code="connection_lost")
    if isinstance(exc, paramiko.SSHException) and "key" in type(exc).__name__.lower():
        return InvalidInputError(f"{where}: unusable SSH key: {detail}")
    if isinstance(exc, (paramiko.SSHException, EOFError)):
        return TransientError(f"{where}: SSH connection lost or refused: {detail}", code="connection_lost")
    if isinstance(exc, ValueError | TypeError) and "key" in str(exc).lower():
        return InvalidInputError(f"{where}: unusable SSH key: {detail}")
    if type(exc).__name__ == "UnknownKeyType":
        return InvalidInputError(f"{where}: unsupported SSH key type")
    if isinstance(exc, paramiko.sftp.SFTPError):
        return OperationError(f"{where}: SFTP error: {detail}", code="sftp_error")
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"{where}: no such file: {detail}")
    if isinstance(exc, PermissionError):
        return NotPermittedError(f"{where}: permission denied: {detail}")
    if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
        return TransientError(f"{where}: connection lost ({type(exc).__name__})", code="connection_lost")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OperationError(f"{where}: datastore full: {detail}", code="datastore_error")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return HostUnreachableError(f"{where}: timed out")
    if isinstance(
        exc, (ConnectionRefusedError, socket.gaierror, paramiko.ssh_exception.NoValidConnectionsError)
    ):
        return HostUnreachableError(f"{where}: host unreachable: {detail}")
    if isinstance(exc, OSError):
        if connecting:
            return HostUnreachableError(f"{where}: host unreachable: {detail}")
        return OperationError(f"{where}: I/O error: {detail}", code="ssh_error")
    return OperationError(f"{where}: {type(exc).__name__}: {detail}", code="ssh_error")
