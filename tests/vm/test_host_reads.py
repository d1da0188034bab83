"""The one-request reads a create makes (ceso.esxi.vmscan, ceso.esxi.layout) against pyVmomi's reading.

Walking the folders from the root must reach what a container view shows;
the MAC scan must find every NIC's MAC; both log in again after a lost
session and read every page of a paged reply.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from ceso.esxi.client import EsxiClient
from ceso.esxi.endpoint import parse_endpoint
from ceso.esxi.layout import read_layout
from ceso.esxi.vmscan import macs_in_use, vms_named
from tests.conftest import unique
from tests.support.simulator import SimulatorHost
from tests.support.soap import PagedStub, offline_client, soap_reply
from tests.support.vms import create_vm, destroy_vm, vim
from tests.vm.lifecycle.conftest import add_portgroup


def _client(sim: SimulatorHost) -> EsxiClient:
    return EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    )


@pytest.fixture
def vms(sim: SimulatorHost) -> Iterator[list[str]]:
    """Two VMs sharing a name with XML's special characters, one with a second (manual) NIC."""
    si = sim.connect()
    twin = unique("a&b<c>")
    first, second = create_vm(si, twin), create_vm(si, twin)
    e1000 = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualE1000(
            key=-21,
            addressType="manual",
            macAddress="00:50:56:3F:0A:0B",
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
        ),
    )
    task = second.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[e1000]))
    assert task.info.state == "success", task.info.error
    yield [twin, first._moId, second._moId]
    destroy_vm(si, twin)
    destroy_vm(si, twin)


def test_vms_named_finds_every_vm_of_the_name(sim: SimulatorHost, vms: list[str]) -> None:
    twin, *moids = vms
    client = _client(sim).connect()
    before = client.stats.total
    found = vms_named(client, twin)
    assert sorted(vm._moId for vm in found) == sorted(moids)
    assert client.stats.total == before + 1
    assert all(vm.name == twin for vm in found)  # bound to the session: usable as pyVmomi objects
    assert vms_named(client, twin[:-1]) == []


def test_macs_in_use_are_every_nic_of_every_vm(sim: SimulatorHost, vms: list[str]) -> None:
    client = _client(sim).connect()
    expected = {
        nic.macAddress.lower()
        for row in client.retrieve("VirtualMachine", ["config.hardware.device"])
        for nic in row.get("config.hardware.device") or []
        if isinstance(nic, vim.vm.device.VirtualEthernetCard)
    }
    assert "00:50:56:3f:0a:0b" in expected and len(expected) >= 3
    before = client.stats.total
    assert macs_in_use(client) == expected
    assert client.stats.total == before + 1


def test_scans_log_in_again_after_the_session_is_gone(sim: SimulatorHost, vms: list[str]) -> None:
    client = _client(sim).connect()
    client.content.sessionManager.Logout()  # the host forgets the session; the client does not know
    assert "00:50:56:3f:0a:0b" in macs_in_use(client)
    assert client.logins == 2
    client.content.sessionManager.Logout()
    assert len(vms_named(client, vms[0])) == 2
    assert client.logins == 3


def test_the_layout_is_what_the_container_views_show(sim: SimulatorHost) -> None:
    si = sim.connect()
    portgroup = unique("pg")
    add_portgroup(si, portgroup)
    client = _client(sim).connect()
    before = client.stats.total
    layout = read_layout(client)
    assert client.stats.total == before + 1
    (dc,) = client.retrieve("Datacenter", ["vmFolder"])
    (compute,) = client.retrieve("ComputeResource", ["resourcePool", "host"])
    datastores = client.retrieve_object(compute["host"][0], ["datastore"])["datastore"]
    networks = {r["name"]: r["obj"]._moId for r in client.retrieve("Network", ["name"])}
    assert layout.datacenter._moId == dc["obj"]._moId and layout.vm_folder._moId == dc["vmFolder"]._moId
    assert layout.resource_pool._moId == compute["resourcePool"]._moId
    assert layout.host._moId == compute["host"][0]._moId
    assert {n: o._moId for n, o in layout.datastores.items()} == {
        client.retrieve_object(d, ["name"])["name"]: d._moId for d in datastores
    }
    assert {n: o._moId for n, o in layout.networks.items()} == networks
    assert portgroup in layout.networks and "VM Network" in layout.networks
    assert layout.holds(dc["vmFolder"]) and not layout.holds(vim.Folder("group-other", None))


def _nics(macs: list[str]) -> str:
    return "".join(
        f'<objects><obj type="VirtualMachine">vm-{i}</obj><propSet><name>config.hardware.device</name>'
        f'<val xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key>'
        f"<macAddress>{mac}</macAddress></VirtualDevice></val></propSet></objects>"
        for i, mac in enumerate(macs)
    )


def test_the_mac_scan_reads_every_page() -> None:
    # The simulator answers every read in one page, so a scripted stub plays a real host's paging.
    stub = PagedStub(
        [
            soap_reply(_nics(["00:50:56:00:00:01", "00:50:56:00:00:02"]), "7"),
            soap_reply(_nics(["00:50:56:00:00:03"]), None),
        ]
    )
    client = offline_client(
        SimpleNamespace(
            propertyCollector=SimpleNamespace(_stub=stub, _moId="ha-property-collector"),
            rootFolder=SimpleNamespace(_moId="ha-folder-root"),
        )
    )
    assert macs_in_use(client) == {"00:50:56:00:00:01", "00:50:56:00:00:02", "00:50:56:00:00:03"}
    assert b"<RetrievePropertiesEx " in stub.requests[0] and b"ha-folder-root" in stub.requests[0]
    assert b"<ContinueRetrievePropertiesEx " in stub.requests[1] and b"<token>7</token>" in stub.requests[1]
    assert client.stats.calls == {"RetrievePropertiesEx": 1, "ContinueRetrievePropertiesEx": 1}
