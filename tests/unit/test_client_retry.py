"""Retries: reads survive a dropped connection; writes and refused requests are never retried."""

from __future__ import annotations

import http.client

import pytest
from pyVmomi import vim

from ceso.errors import InvalidInputError, TransientError
from ceso.esxi.client import EsxiClient
from tests.support.soap import offline_client


def _client() -> EsxiClient:
    return offline_client(object())  # these tests never reach a host


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_read_is_retried_after_connection_loss() -> None:
    fn = Flaky([http.client.RemoteDisconnected("gone"), ConnectionResetError()])
    assert _client().read("list things", fn) == "ok"
    assert fn.calls == 3


def test_read_gives_up_after_three_tries() -> None:
    fn = Flaky([http.client.RemoteDisconnected("gone")] * 5)
    with pytest.raises(TransientError):
        _client().read("list things", fn)
    assert fn.calls == 3


def test_write_is_not_retried_after_connection_loss() -> None:
    fn = Flaky([http.client.RemoteDisconnected("gone")])
    with pytest.raises(TransientError):
        _client().call("create VM", fn)
    assert fn.calls == 1


def test_a_refused_request_is_not_retried() -> None:
    fn = Flaky([vim.fault.InvalidDeviceSpec()])
    with pytest.raises(InvalidInputError):
        _client().read("read", fn)
    assert fn.calls == 1
