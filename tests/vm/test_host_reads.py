"""The one-request reads a create makes (ceso.esxi.vmscan, ceso.esxi.layout, ceso.esxi.source) against
pyVmomi's reading.

Walking the folders from the root must reach what a container view shows;
the MAC scan must find every NIC's MAC; both log in again after a lost
session and read every page of a paged reply. The source read, parsed as
XML, must give the very ConfigSpec pyVmomi's reading of the source gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pyVmomi import SoapAdapter, VmomiSupport

from ceso.backends.api import ApiVmBackend
from ceso.backends.protocol import CARRIED_EXTRA_CONFIG
from ceso.esxi.client import EsxiClient
from ceso.esxi.layout import read_layout
from ceso.esxi.source import SOURCE_PROPERTIES, read_source
from ceso.esxi.vmscan import macs_in_use, vms_named
from ceso.hosts.endpoint import parse_endpoint
from ceso.operations.provision import ProvisionOptions, build_config_spec
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


# -- the source read of vm create / vm clone (ceso.esxi.source) ------------------------------------

DEVICES = "config.hardware.device"
_dev = vim.vm.device
#: The devices provisioning copies; the source read keeps these and no other.
KEPT = (
    _dev.VirtualSCSIController,
    _dev.VirtualSATAController,
    _dev.VirtualNVMEController,
    _dev.VirtualDisk,
    _dev.VirtualEthernetCard,
    _dev.VirtualCdrom,
    _dev.VirtualSerialPort,
    _dev.VirtualUSBController,
    _dev.VirtualUSBXHCIController,
)
EXTRA = "config.extraConfig"


def _specs_of(sources: list[dict[str, Any]], network: str | None) -> list[bytes]:
    """The ConfigSpec provisioning builds from each of ``sources``, serialized (same UUID, paths, MACs)."""
    first = sources[0][DEVICES]
    disks = sum(isinstance(d, _dev.VirtualDisk) for d in first)
    nics = sum(isinstance(d, _dev.VirtualEthernetCard) for d in first)
    out = []
    for source in sources:
        spec = build_config_spec(
            source=source,
            opts=ProvisionOptions(name="new", network=network),
            datastore="LocalDS_0",
            disk_paths=[f"[LocalDS_0] new/new_{i}.vmdk" for i in range(disks)],
            macs=[f"00:50:56:00:00:{i:02x}" for i in range(nics)],
            extra_config={"guestinfo.metadata": "x"},
        )
        spec.uuid = "00000000-0000-0000-0000-000000000000"
        out.append(SoapAdapter.Serialize(spec, version=VmomiSupport.newestVersions.GetName("vim")))
    return out


def _same_source(xml_read: dict[str, Any], pyvmomi_read: dict[str, Any]) -> None:
    """``xml_read`` is what provisioning needs of ``pyvmomi_read``: the same values and kept devices."""
    scalars = [p for p in SOURCE_PROPERTIES if p not in (DEVICES, EXTRA)]
    assert {p: xml_read.get(p) for p in scalars} == {p: pyvmomi_read.get(p) for p in scalars}
    carried = {k.lower() for k in CARRIED_EXTRA_CONFIG}
    assert [(o.key, o.value) for o in xml_read.get(EXTRA) or []] == [
        (o.key, o.value) for o in pyvmomi_read.get(EXTRA) or [] if o.key.lower() in carried
    ]
    kept = [d for d in pyvmomi_read[DEVICES] if isinstance(d, KEPT)]
    assert [(type(d), d.key) for d in xml_read[DEVICES]] == [(type(d), d.key) for d in kept]
    disks = [(d, x) for d, x in zip(kept, xml_read[DEVICES], strict=True) if isinstance(d, _dev.VirtualDisk)]
    assert [(x.backing.fileName, x.capacityInKB) for _, x in disks] == [
        (d.backing.fileName, d.capacityInKB) for d, _ in disks
    ]


@pytest.fixture
def rich_vm(sim: SimulatorHost) -> Iterator[tuple[str, str]]:
    """A VM with disks on SCSI (two kinds), SATA and NVMe controllers and three kinds of NIC on two networks.

    Also a CD-ROM, a serial port, both USB controllers, a NIC in a fixed PCI slot and disk.EnableUUID.
    """
    si = sim.connect()
    portgroup, name = unique("pg"), unique("src")
    add_portgroup(si, portgroup)
    vm = create_vm(si, name)
    flat = _dev.VirtualDisk.FlatVer2BackingInfo

    def disk(key: int, controller: int, unit: int, kb: int) -> Any:
        return _dev.VirtualDeviceSpec(
            operation="add",
            fileOperation="create",
            device=_dev.VirtualDisk(
                key=key,
                controllerKey=controller,
                unitNumber=unit,
                capacityInKB=kb,
                backing=flat(diskMode="persistent", thinProvisioned=True),
            ),
        )

    def nic(cls: Any, key: int, network: str) -> Any:
        backing = _dev.VirtualEthernetCard.NetworkBackingInfo(deviceName=network)
        return _dev.VirtualDeviceSpec(operation="add", device=cls(key=key, backing=backing))

    add = [
        _dev.VirtualLsiLogicController(key=-10, busNumber=1, sharedBus="virtualSharing"),
        _dev.VirtualAHCIController(key=-11, busNumber=0),
        _dev.VirtualNVMEController(key=-12, busNumber=0),
    ]
    changes = [_dev.VirtualDeviceSpec(operation="add", device=d) for d in add] + [
        disk(-20, -10, 3, 2 * 2**20),
        disk(-21, -11, 0, 2**20),
        disk(-22, -12, 0, 2**19),
        nic(_dev.VirtualE1000, -30, portgroup),
        nic(_dev.VirtualE1000e, -31, "VM Network"),
    ]
    changes[-1].device.slotInfo = _dev.VirtualDevice.PciBusSlotInfo(pciSlotNumber=224)
    off = _dev.VirtualDevice.ConnectInfo(startConnected=False, allowGuestControl=True, connected=False)
    changes += [
        _dev.VirtualDeviceSpec(operation="add", device=d)
        for d in (
            _dev.VirtualCdrom(
                key=-40,
                controllerKey=-11,
                unitNumber=1,
                backing=_dev.VirtualCdrom.IsoBackingInfo(fileName="[LocalDS_0] iso/a.iso"),
                connectable=off,
            ),
            _dev.VirtualSerialPort(
                key=-41,
                yieldOnPoll=True,
                backing=_dev.VirtualSerialPort.PipeBackingInfo(pipeName="/tmp/com1", endpoint="client"),
                connectable=off,
            ),
            _dev.VirtualUSBController(key=-42, ehciEnabled=True),
            _dev.VirtualUSBXHCIController(key=-43),
        )
    ]
    extra = [vim.option.OptionValue(key="disk.EnableUUID", value="TRUE")]
    task = vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=changes, firmware="efi", extraConfig=extra))
    assert task.info.state == "success", task.info.error
    yield name, portgroup
    destroy_vm(si, name)


def test_the_source_read_gives_the_config_spec_pyvmomi_gives(
    sim: SimulatorHost, rich_vm: tuple[str, str]
) -> None:
    name, portgroup = rich_vm
    client = _client(sim).connect()
    ops = ApiVmBackend(client)
    vm = ops.find(name)
    before = client.stats.total
    source = ops.source_props(vm)
    assert client.stats.total == before + 1
    assert source["obj"] is vm
    reference = client.retrieve_object(vm, SOURCE_PROPERTIES)
    assert len(reference[DEVICES]) > len(source[DEVICES]) >= 10  # 4 controllers, 4 disks, 3 NICs here
    assert source["config.firmware"] == "efi" and source["config.hardware.numCPU"] == 2
    _same_source(source, reference)
    for network in (None, portgroup):
        built, expected = _specs_of([source, reference], network)
        assert built == expected


def test_the_source_read_logs_in_again_after_the_session_is_gone(
    sim: SimulatorHost, rich_vm: tuple[str, str]
) -> None:
    client = _client(sim).connect()
    vm = ApiVmBackend(client).find(rich_vm[0])
    client.content.sessionManager.Logout()
    assert read_source(client, vm)["runtime.powerState"] == "poweredOff"
    assert client.logins == 2


#: A source the simulator cannot make: a real NVMe controller, a SCSI controller without sharedBus,
#: a raw-mapped disk, a switch-port NIC, an empty network name, a name needing escapes, no firmware.
_SOURCE_REPLY = """<objects><obj type="VirtualMachine">vm-42</obj>
<propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
<VirtualDevice xsi:type="VirtualIDEController"><key>200</key><deviceInfo><label>IDE 0</label><summary>IDE 0</summary>
</deviceInfo><busNumber>0</busNumber></VirtualDevice>
<VirtualDevice xsi:type="VirtualLsiLogicSASController"><key>1000</key><busNumber>0</busNumber></VirtualDevice>
<VirtualDevice xsi:type="VirtualNVMEController"><key>31000</key><busNumber>0</busNumber><device>2001</device>
</VirtualDevice>
<VirtualDevice xsi:type="VirtualDisk"><key>2000</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo">
<fileName>[ds &amp; co] a&lt;b/a.vmdk</fileName><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned>
</backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>33554432</capacityInKB>
<capacityInBytes>34359738368</capacityInBytes></VirtualDevice>
<VirtualDevice xsi:type="VirtualDisk"><key>2001</key>
<backing xsi:type="VirtualDiskRawDiskMappingVer1BackingInfo"><fileName>[ds &amp; co] a&lt;b/rdm.vmdk</fileName>
<diskMode>persistent</diskMode><lunUuid>0100</lunUuid></backing>
<controllerKey>31000</controllerKey><unitNumber>0</unitNumber><capacityInKB>1048576</capacityInKB></VirtualDevice>
<VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key>
<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>50 1a</switchUuid>
<portgroupKey>dvportgroup-1</portgroupKey></port></backing><controllerKey>100</controllerKey><unitNumber>7</unitNumber>
<addressType>assigned</addressType><macAddress>00:50:56:aa:bb:cc</macAddress></VirtualDevice>
<VirtualDevice xsi:type="VirtualE1000e"><key>4001</key>
<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName></deviceName></backing>
<slotInfo xsi:type="VirtualDevicePciBusSlotInfo"><pciSlotNumber>192</pciSlotNumber></slotInfo>
<controllerKey>100</controllerKey><unitNumber>8</unitNumber></VirtualDevice>
<VirtualDevice xsi:type="VirtualCdrom"><key>3002</key><deviceInfo><label>CD/DVD drive 1</label>
<summary>Remote device</summary></deviceInfo><backing xsi:type="VirtualCdromRemoteAtapiBackingInfo">
<deviceName></deviceName><useAutoDetect>false</useAutoDetect></backing><connectable>
<migrateConnect>unset</migrateConnect><startConnected>false</startConnected><allowGuestControl>true</allowGuestControl>
<connected>false</connected><status>untried</status></connectable><controllerKey>201</controllerKey>
<unitNumber>0</unitNumber></VirtualDevice>
<VirtualDevice xsi:type="VirtualSerialPort"><key>9000</key><backing xsi:type="VirtualSerialPortURIBackingInfo">
<direction>server</direction><serviceURI>telnet://:7001</serviceURI></backing><connectable>
<startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>false</connected>
</connectable><controllerKey>400</controllerKey><unitNumber>0</unitNumber><yieldOnPoll>true</yieldOnPoll></VirtualDevice>
<VirtualDevice xsi:type="VirtualUSBXHCIController"><key>14000</key><controllerKey>100</controllerKey>
<unitNumber>23</unitNumber><busNumber>0</busNumber><autoConnectDevices>true</autoConnectDevices></VirtualDevice>
</val></propSet>
<propSet><name>config.extraConfig</name><val xsi:type="ArrayOfOptionValue">
<OptionValue xsi:type="OptionValue"><key>disk.EnableUUID</key><value xsi:type="xsd:string">TRUE</value></OptionValue>
<OptionValue xsi:type="OptionValue"><key>guestinfo.userdata</key><value xsi:type="xsd:string">c2VjcmV0</value>
</OptionValue></val></propSet>
<propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">4</val></propSet>
<propSet><name>config.hardware.memoryMB</name><val xsi:type="xsd:int">8192</val></propSet>
<propSet><name>config.guestId</name><val xsi:type="xsd:string">debian12_64Guest</val></propSet>
<propSet><name>config.version</name><val xsi:type="xsd:string">vmx-21</val></propSet>
<propSet><name>summary.config.vmPathName</name><val xsi:type="xsd:string">[ds &amp; co] a&lt;b/a.vmx</val></propSet>
<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
</objects>"""


def _offline(stub: PagedStub) -> EsxiClient:
    return offline_client(
        SimpleNamespace(propertyCollector=SimpleNamespace(_stub=stub, _moId="ha-property-collector"))
    )


def test_the_source_read_parses_what_pyvmomi_parses() -> None:
    stub = PagedStub([soap_reply(_SOURCE_REPLY, None)])
    vm = vim.VirtualMachine("vm-42", None)
    source = read_source(_offline(stub), vm)
    (request,) = stub.requests
    assert b'<obj type="VirtualMachine">vm-42</obj><skip>false</skip>' in request
    assert all(f"<pathSet>{p}</pathSet>".encode() in request for p in SOURCE_PROPERTIES)
    # The same <objects> through pyVmomi's deserializer, as EsxiClient.retrieve_object reads it.
    content = SoapAdapter.Deserialize(
        _SOURCE_REPLY.replace(
            "<objects>",
            '<objects xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema">',
            1,
        ),
        vim.ObjectContent,
    )
    reference = {"obj": vm, **{p.name: p.val for p in content.propSet}}
    assert "config.firmware" not in source and "config.firmware" not in reference
    _same_source(source, reference)
    assert (
        source["config.hardware.numCPU"] == 4 and source["summary.config.vmPathName"] == "[ds & co] a<b/a.vmx"
    )
    nvme, _, raw, port_nic, unnamed, cdrom, serial, _ = source[DEVICES][1:]
    assert isinstance(nvme, _dev.VirtualNVMEController) and raw.controllerKey == 31000
    assert isinstance(raw.backing, _dev.VirtualDisk.RawDiskMappingVer1BackingInfo)
    assert getattr(port_nic.backing, "deviceName", None) is None and unnamed.backing.deviceName == ""
    assert unnamed.slotInfo.pciSlotNumber == 192 and cdrom.controllerKey == 201
    assert isinstance(cdrom.backing, _dev.VirtualCdrom.RemoteAtapiBackingInfo)
    assert (serial.backing.serviceURI, serial.backing.direction, serial.yieldOnPoll) == (
        "telnet://:7001",
        "server",
        True,
    )
    # Of the source's extraConfig only what a new VM keeps is read: never its guestinfo.
    assert [(o.key, o.value) for o in source["config.extraConfig"]] == [("disk.EnableUUID", "TRUE")]
    built, expected = _specs_of([source, reference], "VM Network")
    assert built == expected
    # Without a network for it, a first NIC on a switch port has none to copy, either way.
    for read in (source, reference):
        with pytest.raises(TypeError, match="deviceName"):
            _specs_of([read], None)


def test_the_source_read_leaves_out_devices_pyvmomi_does_not_know() -> None:
    reply = _SOURCE_REPLY.replace("VirtualIDEController", "VirtualQuantumEntangler", 1)
    source = read_source(_offline(PagedStub([soap_reply(reply, None)])), vim.VirtualMachine("vm-42", None))
    assert [d.key for d in source[DEVICES]] == [1000, 31000, 2000, 2001, 4000, 4001, 3002, 9000, 14000]
