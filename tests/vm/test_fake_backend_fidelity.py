"""FakeBackend answers as the API route does: one scenario, run on the simulator and on the fake.

The step-logic tests on the fake (test_steps_on_fake.py) are only worth what
the fake's answers are worth; this pins them to the real route's: the same
results and the same CesoError classes for the same calls. A second scenario
clones a source with CD-ROMs, serial ports, USB controllers, a NIC in a fixed
PCI slot, ``disk.EnableUUID``, cores per socket and reservations, and compares
the new VM's hardware (tests/ssh/test_backend.py runs both on the SSH route).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ceso.backends.api import ApiVmBackend
from ceso.backends.fake import FakeBackend
from ceso.backends.guest import shut_down_guest
from ceso.backends.protocol import AnyBackend
from ceso.backends.vmomi import vim
from ceso.errors import CesoError
from ceso.esxi.client import EsxiClient
from ceso.hosts.endpoint import parse_endpoint
from tests.conftest import unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, destroy_vm, vm_by_name

DS = "LocalDS_0"


def _outcome(call: Callable[[], Any]) -> Any:
    """What a call gave: its (plain) value, or the class name of the CesoError it raised."""
    try:
        return call()
    except CesoError as exc:
        return type(exc).__name__


def _scenario(ops: AnyBackend, name: str) -> list[Any]:
    folder = f"[{DS}] {name}-dir"
    vm = ops.find(name)
    return [
        _outcome(lambda: ops.find(f"{name}-missing")),
        _outcome(lambda: ops.exists(name)),
        _outcome(lambda: ops.datastore(None)),
        _outcome(lambda: ops.datastore("no-such-datastore")),
        _outcome(lambda: ops.network("no-such-network")),
        _outcome(lambda: ops.make_directory(folder)),
        _outcome(lambda: ops.path_exists(folder)),
        _outcome(lambda: ops.make_directory(folder)),
        _outcome(lambda: ops.delete_path(folder)),
        _outcome(lambda: ops.path_exists(folder)),
        _outcome(lambda: ops.delete_path(folder)),
        _outcome(lambda: ops.path_exists(f"[{DS}] {name}/{name}.vmx")),
        _outcome(lambda: ops.power_state(vm)),
        _outcome(lambda: ops.power_off(vm)),
        _outcome(lambda: ops.power_on(vm)),
        _outcome(lambda: ops.power_on(vm)),
        _outcome(lambda: ops.power_state(vm)),
        _outcome(lambda: ops.destroy(vm)),
        _outcome(lambda: shut_down_guest(ops, vm, timeout=20)),
        _outcome(lambda: ops.power_state(vm)),
        _outcome(lambda: ops.create_snapshot(vm, "one") and None),
        _outcome(lambda: [n.name for n in ops.snapshot_tree(vm)]),
        _outcome(lambda: ops.remove_snapshot(ops.snapshot_tree(vm)[0].snapshot)),
        _outcome(lambda: ops.snapshot_tree(vm)),
        _outcome(lambda: ops.destroy(vm)),
        _outcome(lambda: ops.exists(name)),
        _outcome(lambda: ops.path_exists(f"[{DS}] {name}")),
    ]


# -- hardware carried to a clone ---------------------------------------------------------------------
ISO = f"[{DS}] iso/ubuntu-24.04-live-server-amd64.iso"
HARDWARE_PROPS = [
    "config.hardware.device",
    "config.extraConfig",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.memoryAllocation.reservation",
    "config.cpuAllocation.reservation",
]


def carried_devices(source: str, *, sata_key: int, ide1_key: int) -> list[Any]:
    """The devices the hardware scenario's source has besides its disk and NIC (one SATA controller)."""
    d = vim().vm.device
    off = d.VirtualDevice.ConnectInfo(startConnected=False, allowGuestControl=True, connected=False)
    on = d.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True, connected=False)
    return [
        d.VirtualAHCIController(key=sata_key, busNumber=0),
        d.VirtualCdrom(
            key=3000,
            controllerKey=sata_key,
            unitNumber=0,
            backing=d.VirtualCdrom.IsoBackingInfo(fileName=ISO),
            connectable=on,
        ),
        d.VirtualCdrom(
            key=3001,
            controllerKey=ide1_key,
            unitNumber=0,
            backing=d.VirtualCdrom.RemotePassthroughBackingInfo(deviceName="", exclusive=False),
            connectable=off,
        ),
        d.VirtualSerialPort(
            key=9000,
            yieldOnPoll=True,
            backing=d.VirtualSerialPort.URIBackingInfo(serviceURI="telnet://:7001", direction="server"),
            connectable=on,
        ),
        d.VirtualSerialPort(
            key=9001,
            yieldOnPoll=False,
            backing=d.VirtualSerialPort.FileBackingInfo(fileName=f"[{DS}] {source}/serial1.log"),
            connectable=on,
        ),
        d.VirtualUSBController(key=7000, ehciEnabled=True),
        d.VirtualUSBXHCIController(key=14000),
    ]


def clone_hardware(ops: AnyBackend, source: str, name: str) -> Any:
    """What provisioning does with a source's hardware: copy its disks, build the spec from its read, create."""
    from ceso.operations.provision import ProvisionOptions, build_config_spec

    props = ops.source_props(ops.find(source))
    devices = props["config.hardware.device"]
    disks = [dev for dev in devices if isinstance(dev, vim().vm.device.VirtualDisk)]
    nics = [dev for dev in devices if isinstance(dev, vim().vm.device.VirtualEthernetCard)]
    ops.make_directory(f"[{DS}] {name}")
    paths = [f"[{DS}] {name}/{name}{'' if i == 0 else f'_{i}'}.vmdk" for i in range(len(disks))]
    for disk, path in zip(disks, paths, strict=True):
        ops.copy_disk(disk.backing.fileName, path)
    spec = build_config_spec(
        source=props,
        opts=ProvisionOptions(name=name),
        datastore=DS,
        disk_paths=paths,
        macs=[f"00:50:56:3f:10:{i:02x}" for i in range(len(nics))],
        extra_config={},
    )
    return ops.create_vm(spec)


def hardware(props: dict[str, Any], source: str) -> dict[str, Any]:
    """What a user checks of a VM's carried hardware, with the source's name as ``SRC`` in paths.

    ``props`` holds :data:`HARDWARE_PROPS` as any route (or pyVmomi itself) reads them.
    """
    d = vim().vm.device
    devices = props["config.hardware.device"]
    by_key = {dev.key: dev for dev in devices}

    def bus(key: int) -> str:
        controller = by_key.get(key)
        if controller is None:  # the IDE controllers every VM has: some reads leave them out
            return "ide" if key in (200, 201) else "?"
        if isinstance(controller, d.VirtualIDEController):
            return "ide"
        return "sata" if isinstance(controller, d.VirtualAHCIController) else type(controller).__name__

    def backing(dev: Any) -> tuple[Any, ...]:
        b = dev.backing
        fields = ("fileName", "deviceName", "pipeName", "endpoint", "serviceURI", "direction")
        values = tuple(str(getattr(b, f, None) or "").replace(source, "SRC") for f in fields if hasattr(b, f))
        return (type(b).__name__.rsplit(".", 1)[-1], *values)

    def started(dev: Any) -> bool:
        return bool(dev.connectable and dev.connectable.startConnected)

    return {
        "cdroms": sorted(
            (bus(dev.controllerKey), dev.unitNumber, backing(dev), started(dev))
            for dev in devices
            if isinstance(dev, d.VirtualCdrom)
        ),
        "serial": sorted(
            (backing(dev), bool(dev.yieldOnPoll), started(dev))
            for dev in devices
            if isinstance(dev, d.VirtualSerialPort)
        ),
        "usb": sorted(
            (
                "usb2" if isinstance(dev, d.VirtualUSBController) else "usb3",
                bool(getattr(dev, "ehciEnabled", False)),
            )
            for dev in devices
            if isinstance(dev, (d.VirtualUSBController, d.VirtualUSBXHCIController))
        ),
        "nic_slots": [
            getattr(dev.slotInfo, "pciSlotNumber", None)
            for dev in devices
            if isinstance(dev, d.VirtualEthernetCard)
        ],
        "enable_uuid": [
            o.value for o in props.get("config.extraConfig") or [] if o.key.lower() == "disk.enableuuid"
        ],
        "cpus": (props.get("config.hardware.numCPU"), props.get("config.hardware.numCoresPerSocket")),
        "reservations": (
            props.get("config.memoryAllocation.reservation"),
            props.get("config.cpuAllocation.reservation"),
        ),
    }


def api_props(vm: Any) -> dict[str, Any]:
    """:data:`HARDWARE_PROPS` read with pyVmomi, independently of ceso."""
    return {
        "config.hardware.device": list(vm.config.hardware.device),
        "config.extraConfig": list(vm.config.extraConfig),
        "config.hardware.numCPU": vm.config.hardware.numCPU,
        "config.hardware.numCoresPerSocket": vm.config.hardware.numCoresPerSocket,
        "config.memoryAllocation.reservation": vm.config.memoryAllocation.reservation,
        "config.cpuAllocation.reservation": vm.config.cpuAllocation.reservation,
    }


#: What the clone of the scenario's source has: its devices, CD-ROMs and serial ports disconnected.
EXPECTED = {
    "cdroms": [
        ("ide", 0, ("RemotePassthroughBackingInfo", ""), False),
        ("sata", 0, ("IsoBackingInfo", ISO), False),
    ],
    "serial": [
        (("FileBackingInfo", f"[{DS}] SRC/serial1.log"), False, False),
        (("URIBackingInfo", "telnet://:7001", "server"), True, False),
    ],
    "usb": [("usb2", True), ("usb3", False)],
    "nic_slots": [192],
    "enable_uuid": ["TRUE"],
    "cpus": (4, 2),
    "reservations": (1024, 500),
}


def fake_hardware_source(fake: FakeBackend, name: str) -> None:
    """The scenario's source on FakeBackend, as the API and SSH routes have it."""
    vm = fake.add_vm(name, datastore=DS)
    (nic,) = [
        dev
        for dev in vm.config["config.hardware.device"]
        if isinstance(dev, vim().vm.device.VirtualEthernetCard)
    ]
    nic.slotInfo = vim().vm.device.VirtualDevice.PciBusSlotInfo(pciSlotNumber=192)
    vm.config["config.hardware.device"] += carried_devices(name, sata_key=15000, ide1_key=201)
    vm.config["config.extraConfig"] = [vim().option.OptionValue(key="disk.EnableUUID", value="TRUE")]
    vm.config.update(
        {
            "config.hardware.numCPU": 4,
            "config.hardware.memoryMB": 2048,
            "config.hardware.numCoresPerSocket": 2,
            "config.memoryAllocation.reservation": 1024,
            "config.cpuAllocation.reservation": 500,
        }
    )


def api_hardware_source(vm: Any, source: str) -> None:
    """Give pyVmomi VM ``vm`` (4 CPUs, one vmxnet3 NIC) the scenario's source hardware."""
    d = vim().vm.device
    (nic,) = [dev for dev in vm.config.hardware.device if isinstance(dev, d.VirtualEthernetCard)]
    nic.slotInfo = d.VirtualDevice.PciBusSlotInfo(pciSlotNumber=192)
    adds = carried_devices(source, sata_key=-10, ide1_key=201)
    for dev in adds:
        dev.key = -abs(dev.key)
    spec = vim().vm.ConfigSpec(
        numCPUs=4,
        numCoresPerSocket=2,
        memoryAllocation=vim().ResourceAllocationInfo(reservation=1024),
        cpuAllocation=vim().ResourceAllocationInfo(reservation=500),
        extraConfig=[vim().option.OptionValue(key="disk.EnableUUID", value="TRUE")],
        deviceChange=[d.VirtualDeviceSpec(operation="edit", device=nic)]
        + [d.VirtualDeviceSpec(operation="add", device=dev) for dev in adds],
    )
    task = vm.ReconfigVM_Task(spec=spec)
    assert task.info.state == "success", task.info.error


def fake_clone_hardware(source: str, name: str) -> dict[str, Any]:
    fake = FakeBackend(datastores=(DS,))
    fake_hardware_source(fake, source)
    clone = clone_hardware(fake, source, name)
    return hardware(fake.props(clone, HARDWARE_PROPS), source)


@pytest.fixture
def api(sim: SimulatorHost) -> Iterator[tuple[ApiVmBackend, str]]:
    si = sim.connect()
    name = unique("fidelity")
    create_vm(si, name)
    client = EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    )
    yield ApiVmBackend(client.connect(), task_timeout=60), name
    destroy_vm(si, name)


def test_the_fake_answers_as_the_api_route(api: tuple[ApiVmBackend, str]) -> None:
    ops, name = api
    real = _scenario(ops, name)
    fake = FakeBackend(datastores=(DS,))
    fake.add_vm(name, datastore=DS)
    assert _scenario(fake, name) == real
    # The scenario is not vacuous: it saw each kind of answer.
    assert {"NotFoundError", "ConflictError", True, False, "poweredOn", "poweredOff"} <= set(
        r for r in real if isinstance(r, (str, bool))
    )


def test_a_clone_keeps_the_sources_hardware_on_the_api_route_as_on_the_fake(sim: SimulatorHost) -> None:
    si = sim.connect()
    source, name = unique("hwsrc"), unique("hwcopy")
    (sim.datastore_dir() / "iso").mkdir(exist_ok=True)
    (sim.datastore_dir() / "iso" / ISO.rsplit("/", 1)[1]).write_bytes(b"\0" * 4096)
    vm = create_vm(si, source, cpus=4)
    api_hardware_source(vm, source)
    client = EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    )
    ops = ApiVmBackend(client.connect(), task_timeout=60)
    try:
        assert hardware(api_props(vm), source) == {
            **EXPECTED,
            "cdroms": [
                ("ide", 0, ("RemotePassthroughBackingInfo", ""), False),
                ("sata", 0, ("IsoBackingInfo", ISO), True),
            ],
            "serial": [(b, y, True) for b, y, _ in EXPECTED["serial"]],
        }
        clone_hardware(ops, source, name)
        got = hardware(api_props(vm_by_name(si, name)), source)  # read back by pyVmomi, not by ceso
        assert got == EXPECTED
        assert got == fake_clone_hardware(source, name)
    finally:
        destroy_vm(si, name)
        destroy_vm(si, source)
