"""Host URL validation, thumbprint normalisation and the fault translation table."""

from __future__ import annotations

import http.client
import socket

import pytest
from pyVmomi import vim, vmodl

from ceso import errors
from ceso.backends.faults import translate
from ceso.hosts.endpoint import normalize_thumbprint, parse_endpoint


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://esxi.example.com", "https://esxi.example.com:443/sdk"),
        ("http://127.0.0.1:8989/sdk", "http://127.0.0.1:8989/sdk"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443/sdk"),
    ],
)
def test_good_urls(url: str, expected: str) -> None:
    assert parse_endpoint(url).url == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "esxi.example.com",
        "ftp://h",
        "https://",
        "https://h:99999",
        "https://root:pw@h",
        "https://h/sdk?x=1",
        "https://h /sdk",
        "https://h\n",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(errors.InvalidInputError, match="malformed URL"):
        parse_endpoint(url)


def test_thumbprint_forms() -> None:
    raw = "AB" * 32
    assert normalize_thumbprint(raw) == ":".join(["ab"] * 32)
    assert normalize_thumbprint(":".join(["AB"] * 32)) == ":".join(["ab"] * 32)
    with pytest.raises(errors.InvalidInputError):
        normalize_thumbprint("ab" * 20)  # SHA-1 is not accepted for pinning


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (vim.fault.InvalidLogin(), errors.AuthenticationError, "authentication_failed"),
        (vim.fault.NotAuthenticated(), errors.TransientError, "session_lost"),
        (vim.fault.RestrictedVersion(), errors.NotPermittedError, "api_read_only"),
        (vmodl.fault.NotSupported(), errors.OperationError, "not_supported"),
        (vim.fault.InvalidPowerState(), errors.ConflictError, "conflict"),
        (vim.fault.DuplicateName(), errors.ConflictError, "conflict"),
        (vim.fault.FileNotFound(), errors.NotFoundError, "not_found"),
        (vmodl.fault.InvalidArgument(), errors.InvalidInputError, "host_refused_input"),
        (vim.fault.NoDiskSpace(), errors.OperationError, "datastore_error"),
        (vim.fault.CannotCreateFile(), errors.OperationError, "datastore_error"),
        (vim.fault.NoPermission(), errors.NotPermittedError, "not_permitted"),
        (vmodl.fault.SystemError(reason="x"), errors.OperationError, "esxi_fault"),
        (http.client.RemoteDisconnected("gone"), errors.TransientError, "connection_lost"),
        (ConnectionResetError(), errors.TransientError, "connection_lost"),
        (ConnectionRefusedError(), errors.HostUnreachableError, "host_unreachable"),
        (socket.gaierror(), errors.HostUnreachableError, "host_unreachable"),
        (TimeoutError(), errors.HostUnreachableError, "host_unreachable"),
        (RuntimeError("surprise"), errors.OperationError, "esxi_fault"),
    ],
)
def test_every_foreign_exception_becomes_a_ceso_error(exc: BaseException, expected: type, code: str) -> None:
    translated = translate(exc, host="esxi-a", action="do a thing")
    assert type(translated) is expected
    assert translated.code == code
    assert "esxi-a" in translated.message


def test_ceso_errors_pass_through() -> None:
    err = errors.LockedError("held")
    assert translate(err, host="h", action="a") is err


def test_exit_codes_are_documented() -> None:
    assert [
        errors.InvalidInputError.exit_code,
        errors.NotPermittedError.exit_code,
        errors.NotFoundError.exit_code,
        errors.ConflictError.exit_code,
        errors.HostUnreachableError.exit_code,
        errors.OperationError.exit_code,
    ] == [2, 3, 4, 5, 6, 1]
