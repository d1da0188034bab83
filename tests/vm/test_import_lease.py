"""The API route's lease, in process against the simulator: progress keeps the lease alive (the
host records it), an abort ends the lease, and the uploaded disk is on the datastore."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceso.backends.api import ApiVmBackend
from ceso.errors import CesoError
from ceso.esxi.client import EsxiClient
from ceso.hosts.endpoint import parse_endpoint
from ceso.images import api_import
from ceso.images.api_import import LeaseImport
from ceso.images.ovf import import_descriptor
from ceso.images.package import open_package
from tests.conftest import unique
from tests.support.images import MIB, make_ova, make_raw
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, vm_names


def test_the_lease_is_kept_alive_while_bytes_flow_and_aborted_on_request(
    sim: SimulatorHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_import, "KEEPALIVE_S", 0.0)  # a beat for every block sent
    client = EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    )
    calls: list[str] = []
    ops = ApiVmBackend(client, lambda method, _args: calls.append(method))
    raw = make_raw(tmp_path / "r", 2 * MIB)
    name = unique("lease")
    try:
        with open_package(str(make_ova(tmp_path, "lease", [raw]))) as package:
            lease = LeaseImport(
                ops, name=name, datastore="LocalDS_0", network=None, marks={"ceso.job-id": "t"}
            )
            lease.create(import_descriptor(package.descriptor), package.image)
            for disk in package.disks():
                lease.upload(disk, percent=lambda: 42)
            held = lease.lease
            assert client.retrieve_object(held, ["transferProgress"])["transferProgress"] == 42
            lease.abort()
            assert lease.lease is None and calls[-1] == "HttpNfcLease.HttpNfcLeaseAbort"
            with pytest.raises(CesoError):  # the host no longer knows the lease
                client.retrieve_object(held, ["state"])
            lease.abort()  # a second abort is a no-op
        flat = next((sim.datastore_dir() / name).glob("*-flat.vmdk"))
        assert flat.read_bytes() == raw
        assert calls[:2] == ["OvfManager.CreateImportSpec", "ResourcePool.ImportVApp"]
    finally:
        si = sim.connect()
        if name in vm_names(si):
            destroy_vm(si, name)
