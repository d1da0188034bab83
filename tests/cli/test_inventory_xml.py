"""The XML listing (``ceso.esxi.propxml``) against the pyVmomi reading of the same properties.

``vm list`` parses the property collector's reply itself; these tests hold it
to the answer pyVmomi's own deserializer gives for the same VMs (disks, NICs
of two types, nested snapshots, a template, a powered-on VM), over http and
over pinned https, and check paging, re-login after a lost session and fault
translation on the raw path.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from ceso.errors import NotFoundError
from ceso.esxi import propxml
from ceso.esxi.client import EsxiClient
from ceso.esxi.inventory import VM_PROPERTIES, list_vms, vm_summary
from ceso.esxi.propxml import retrieve_xml
from ceso.hosts.endpoint import fetch_thumbprint, parse_endpoint
from tests.conftest import unique
from tests.support.simulator import SimulatorHost
from tests.support.soap import PagedStub, offline_client, soap_reply
from tests.support.vms import _parts, create_vm, vim, vm_by_name, vm_names


def _client(sim: SimulatorHost, thumbprint: str | None = None) -> EsxiClient:
    return EsxiClient(
        name="sim",
        endpoint=parse_endpoint(sim.url),
        username="root",
        password=lambda: "pw",
        thumbprint=thumbprint,
    )


def _wait(si: Any, task: Any) -> None:
    from pyVim.task import WaitForTask

    WaitForTask(task, si=si)


def _varied_vms(si: Any) -> list[str]:
    """Four VMs whose summaries exercise every field the listing reads."""
    plain, snapped, template, running = (unique(p) for p in ("plain", "snap", "tmpl", "run"))
    create_vm(si, plain, cpus=4, memory_mb=4096, disk_gb=40)
    vm = create_vm(si, snapped)
    extra_disk = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        fileOperation="create",
        device=vim.vm.device.VirtualDisk(
            key=-20,
            controllerKey=next(
                d.key for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualSCSIController)
            ),
            unitNumber=1,
            capacityInKB=2 * 1024 * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=False
            ),
        ),
    )
    e1000 = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualE1000(
            key=-21,
            addressType="manual",
            macAddress="00:50:56:01:02:03",
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
        ),
    )
    _wait(si, vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[extra_disk, e1000])))
    _wait(si, vm.CreateSnapshot_Task(name="one", memory=False, quiesce=False))
    _wait(si, vm.CreateSnapshot_Task(name="two", memory=False, quiesce=False))
    create_vm(si, template).MarkAsTemplate()
    _wait(si, create_vm(si, running).PowerOnVM_Task())
    return [plain, snapped, template, running]


@pytest.fixture
def varied(sim: SimulatorHost) -> Iterator[list[str]]:
    si = sim.connect()
    names = _varied_vms(si)
    yield names
    for name in names:
        vm = vm_by_name(si, name)
        if vm is None:
            continue
        if name.startswith("run"):
            _wait(si, vm.PowerOffVM_Task())
        if name.startswith("tmpl"):
            _, compute, host = _parts(si)
            vm.MarkAsVirtualMachine(pool=compute.resourcePool, host=host)
        _wait(si, vm.Destroy_Task())


def _pyvmomi_summaries(client: EsxiClient) -> list[Any]:
    rows = client.retrieve("VirtualMachine", VM_PROPERTIES)
    return sorted((vm_summary(client.name, r) for r in rows if "name" in r), key=lambda v: v.name)


def test_xml_listing_equals_pyvmomis_reading(sim: SimulatorHost, varied: list[str]) -> None:
    client = _client(sim).connect()
    listed = list_vms(client)
    assert listed == _pyvmomi_summaries(client)
    by_name = {v.name: v for v in listed}
    plain, snapped, template, running = (by_name[n] for n in varied)
    assert plain.cpus == 4 and plain.disks[0].capacity_bytes == 40 * 2**30 and plain.disks[0].thin
    assert len(snapped.disks) == 2 and snapped.disks[1].thin is False
    assert [n.mac for n in snapped.nics][1] == "00:50:56:01:02:03"
    assert snapped.snapshots == 2
    assert template.template is True
    assert running.power_state == "poweredOn"


def test_one_listing_is_three_soap_requests(sim: SimulatorHost, varied: list[str]) -> None:
    client = _client(sim).connect()
    before = dict(client.stats.calls)
    list_vms(client)
    made = {k: v - before.get(k, 0) for k, v in client.stats.calls.items() if v != before.get(k, 0)}
    assert made == {"CreateContainerView": 1, "RetrievePropertiesEx": 1, "DestroyView": 1}


def test_small_pages_are_all_read(sim: SimulatorHost, varied: list[str]) -> None:
    client = _client(sim).connect()
    names = retrieve_xml(client, "VirtualMachine", ["name"], lambda o: o.props["name"].text, page_size=1)
    assert set(varied) <= set(names)
    assert len(names) == len(set(names)) == len(client.retrieve("VirtualMachine", ["name"]))


def test_listing_logs_in_again_after_the_session_is_gone(sim: SimulatorHost, varied: list[str]) -> None:
    client = _client(sim).connect()
    client.content.sessionManager.Logout()  # the host forgets the session; the client does not know
    assert set(varied) <= {v.name for v in list_vms(client)}
    assert client.logins == 2


def test_a_fault_on_the_raw_path_is_translated(sim: SimulatorHost) -> None:
    client = _client(sim).connect()
    stub = client.content.propertyCollector._stub
    body = propxml._continue_body("no-such-collector", "t")
    with pytest.raises(NotFoundError) as err:
        client.read("list VirtualMachine", lambda: propxml._post(stub, body, lambda _: None))
    assert "ManagedObjectNotFound" in err.value.message
    assert client.current_time()  # the pooled connection is still good after the fault


def _names(names: list[str]) -> str:
    return "".join(
        f'<objects><obj type="VirtualMachine">vm-{n}</obj><propSet><name>name</name>'
        f'<val xsi:type="xsd:string">{n}</val></propSet></objects>'
        for n in names
    )


def test_every_page_is_read_through_the_continuation_token() -> None:
    # The simulator answers every read in one page (and has no ContinueRetrievePropertiesEx),
    # so a scripted stub plays a real host's paging.
    stub = PagedStub([soap_reply(_names(["a", "b"]), "page-2"), soap_reply(_names(["c"]), None)])
    destroyed: list[str] = []
    view = SimpleNamespace(_moId="session[1]view", DestroyView=lambda: destroyed.append("view"))
    client = offline_client(
        SimpleNamespace(
            propertyCollector=SimpleNamespace(_stub=stub, _moId="ha-property-collector"),
            viewManager=SimpleNamespace(CreateContainerView=lambda *a: view),
            rootFolder=None,
        )
    )
    names = retrieve_xml(client, "VirtualMachine", ["name"], lambda o: (o.moid, o.props["name"].text))
    assert names == [("vm-a", "a"), ("vm-b", "b"), ("vm-c", "c")]
    assert (
        b"<RetrievePropertiesEx " in stub.requests[0] and b"<maxObjects>500</maxObjects>" in stub.requests[0]
    )
    assert (
        b"<ContinueRetrievePropertiesEx " in stub.requests[1] and b"<token>page-2</token>" in stub.requests[1]
    )
    assert destroyed == ["view"]
    assert client.stats.calls == {"RetrievePropertiesEx": 1, "ContinueRetrievePropertiesEx": 1}


def test_xml_listing_over_pinned_https(sim_factory: Any) -> None:
    host = sim_factory(tls=True)
    name = unique("tls")
    create_vm(host.connect(), name)
    client = _client(host, fetch_thumbprint(parse_endpoint(host.url))).connect()
    assert list_vms(client) == _pyvmomi_summaries(client)
    assert name in {v.name for v in list_vms(client)}


def test_the_varied_vms_left_no_dead_vm_behind(sim: SimulatorHost) -> None:
    # Runs after the tests above (file order) cleaned up their VMs in the shared simulator:
    # unregistering a template there left a dead entry that broke every later test's listing.
    vm_names(sim.connect())  # raises ManagedObjectNotFound if a removed VM is still listed
