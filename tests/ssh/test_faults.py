"""No paramiko, socket or SFTP exception leaves the SSH adapter untranslated."""

from __future__ import annotations

import errno
import inspect
import socket

import paramiko
import pytest
from paramiko import ssh_exception

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
from ceso.ssh.faults import redact, translate


def _key() -> paramiko.PKey:
    return paramiko.RSAKey.generate(1024)


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance built as paramiko builds it (each class has its own arguments)."""
    special: dict[type[BaseException], tuple[object, ...]] = {
        ssh_exception.BadHostKeyException: ("h", _key(), _key()),
        ssh_exception.NoValidConnectionsError: (
            {("127.0.0.1", 22): ConnectionRefusedError(errno.ECONNREFUSED, "x")},
        ),
        ssh_exception.BadAuthenticationType: ("Bad authentication type", ["publickey"]),
        ssh_exception.ChannelException: (2, "Connect failed"),
        ssh_exception.ProxyCommandFailure: ("nc host 22", "exit 1"),
        ssh_exception.PartialAuthentication: (["password"],),
    }
    try:
        return cls(*special.get(cls, ("boom",)))
    except TypeError:
        return cls()


PARAMIKO_ERRORS = [
    c for _, c in inspect.getmembers(ssh_exception, inspect.isclass) if issubclass(c, BaseException)
]


@pytest.mark.parametrize("cls", PARAMIKO_ERRORS, ids=lambda c: c.__name__)
def test_every_paramiko_exception_becomes_a_ceso_error(cls: type[BaseException]) -> None:
    for connecting in (True, False):
        err = translate(_instance(cls), host="h", action="run x", connecting=connecting)
        assert isinstance(err, CesoError)
        assert "h" in err.message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (paramiko.AuthenticationException("Authentication failed."), AuthenticationError),
        (paramiko.BadAuthenticationType("no", ["publickey"]), AuthenticationError),
        (paramiko.PasswordRequiredException("encrypted"), InvalidInputError),
        (paramiko.ChannelException(2, "refused"), TransientError),
        (paramiko.SSHException("Error reading SSH protocol banner"), TransientError),
        (EOFError(), TransientError),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), HostUnreachableError),
        (socket.gaierror(-2, "Name or service not known"), HostUnreachableError),
        (TimeoutError("timed out"), HostUnreachableError),
        (ConnectionResetError(errno.ECONNRESET, "reset"), TransientError),
        (BrokenPipeError(errno.EPIPE, "pipe"), TransientError),
        (FileNotFoundError(errno.ENOENT, "No such file"), NotFoundError),
        (PermissionError(errno.EACCES, "Permission denied"), NotPermittedError),
        (OSError(errno.ENOSPC, "No space left on device"), OperationError),
        (OSError("Failure"), OperationError),
        (paramiko.sftp.SFTPError("Garbage packet received"), OperationError),
        (RuntimeError("anything else"), OperationError),
    ],
)
def test_mapping(exc: BaseException, kind: type[CesoError]) -> None:
    err = translate(exc, host="esx1", action="do it")
    assert type(err) is kind, err
    assert translate(OSError("x"), host="h", action="a", connecting=True).code == "host_unreachable"


def test_the_mismatch_of_a_host_key_is_a_thumbprint_error() -> None:
    err = translate(paramiko.BadHostKeyException("h", _key(), _key()), host="h", action="log in")
    assert isinstance(err, ThumbprintMismatchError) and err.code == "ssh_host_key_mismatch"


def test_secrets_are_scrubbed_from_messages() -> None:
    secret = "s3cret-Pa55"
    err = translate(RuntimeError(f"failed with password {secret}"), host="h", action="x", secrets=[secret])
    assert secret not in err.message and "<redacted>" in err.message
    assert redact("abc", ["ab"]) == "abc"  # too short to be worth shredding words


def test_an_exception_whose_str_fails_still_translates() -> None:
    broken = ssh_exception.ProxyCommandFailure.__new__(ssh_exception.ProxyCommandFailure)
    err = translate(broken, host="h", action="x")
    assert isinstance(err, TransientError) and "ProxyCommandFailure" in err.message
