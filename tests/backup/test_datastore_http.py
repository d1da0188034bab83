"""Datastore files over /folder against the simulator: session cookie, resume after a cut, upload."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ceso.backup.datastore_http import DatastoreHttp
from ceso.errors import NotFoundError
from ceso.esxi.client import EsxiClient
from ceso.hosts.endpoint import parse_endpoint
from tests.conftest import unique
from tests.support.proxy import FlakyProxy
from tests.support.simulator import SimulatorHost


def client_via(port: int) -> EsxiClient:
    return EsxiClient(
        name="sim",
        endpoint=parse_endpoint(f"http://127.0.0.1:{port}/sdk"),
        username="root",
        password=lambda: "pw",
        thumbprint=None,
    )


@pytest.fixture
def payload_file(sim: SimulatorHost) -> tuple[str, bytes, Path]:
    name = unique("http")
    directory = sim.datastore_dir() / name
    directory.mkdir()
    data = os.urandom(3 << 20) + b"\0" * (2 << 20)
    (directory / "disk-flat.vmdk").write_bytes(data)
    return f"{name}/disk-flat.vmdk", data, directory


def read_all(http: DatastoreHttp, path: str) -> tuple[bytes, int]:
    remote = http.open_read("LocalDS_0", path)
    buf = bytearray(256 * 1024)
    out = bytearray()
    try:
        while n := remote.readinto(buf):
            out += buf[:n]
    finally:
        remote.close()
    return bytes(out), remote.resumes


def test_read_sends_the_session_cookie_and_resumes_after_cuts(
    sim: SimulatorHost, payload_file: tuple
) -> None:
    path, data, _ = payload_file
    proxy = FlakyProxy((sim.host, sim.port), cut_after=1_500_000, cuts=3)
    try:
        client = client_via(proxy.port)
        proxy.cuts = 0  # the login goes through untouched
        client.connect()
        proxy.cuts = 2
        got, resumes = read_all(DatastoreHttp(client), path)
    finally:
        proxy.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert resumes == 2
    folder = [r for r in proxy.requests if r.startswith(b"GET /folder/")]
    assert len(folder) == 3
    assert all(b"\r\nCookie: vmware_soap_session=" in r for r in folder)
    assert b"Range: bytes=" in folder[1] and b"Range: bytes=" in folder[2]


def test_upload_size_and_missing_file(sim: SimulatorHost, payload_file: tuple) -> None:
    path, data, directory = payload_file
    client = client_via(sim.port)
    http = DatastoreHttp(client)
    target = path.replace("disk-flat", "copy-flat")
    view = memoryview(data)
    http.upload("LocalDS_0", target, len(data), (view[i : i + 100_000] for i in range(0, len(data), 100_000)))
    assert (directory / "copy-flat.vmdk").read_bytes() == data
    assert http.size("LocalDS_0", target) == len(data)
    with pytest.raises(NotFoundError):
        http.open_read("LocalDS_0", f"{path}.missing")
    up = http.chunked_upload("LocalDS_0", path.replace("disk-flat.vmdk", "chunked.bin"))
    up.write(b"abc")
    up.write(b"def")
    up.finish()
    assert (directory / "chunked.bin").read_bytes() == b"abcdef"
    client.logout()
