"""SshVmBackend on a free-licensed simulated host through a real sshd: the SSH route's VM operations.

Effects are read back independently, through the simulator's API (reads are
allowed on a free host) and the datastore directory, and every command is
checked against the emulators' own log.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ceso.backends.ssh import SshVmBackend
from ceso.errors import ConflictError, NotFoundError, OperationError
from ceso.operations.provision import ProvisionOptions, build_config_spec
from ceso.ssh.client import SshClient
from ceso.ssh.handles import SshVm
from tests.ssh.conftest import TEMPLATE_VMX, make_ssh_template
from tests.support.simulator import SimulatorHost
from tests.support.sshd import SshServer
from tests.support.vms import destroy_vm, devices_of, extra_config, snapshot_names, vm_by_name


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, args: dict[str, Any]) -> None:
        self.calls.append((method, args))

    def commands(self) -> list[str]:
        return [a["command"] for m, a in self.calls if m == "ssh"]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def backend(ssh_client: SshClient, rec: Recorder) -> SshVmBackend:
    return SshVmBackend(ssh_client, rec, task_timeout=60)


@pytest.fixture
def template(shell: SshServer, free_sim: SimulatorHost) -> Iterator[tuple[str, bytes]]:
    name = _unique("tmpl")
    payload = os.urandom(32 * 1024) + b"ceso ssh template\n" * 50
    make_ssh_template(shell, free_sim, name, payload, mac="00:50:56:3f:00:01")
    yield name, payload
    si = free_sim.connect()
    if vm_by_name(si, name) is not None:
        from tests.ssh.conftest import local_si

        destroy_vm(local_si(free_sim), name)


def test_the_free_hosts_api_refuses_what_the_shell_does(
    free_sim: SimulatorHost, template: tuple[str, bytes]
) -> None:
    vm = vm_by_name(free_sim.connect(), template[0])
    with pytest.raises(Exception, match=r"RestrictedVersion|license"):
        vm.PowerOnVM_Task()


def test_template_registered_from_its_vmx(
    backend: SshVmBackend, free_sim: SimulatorHost, template: tuple[str, bytes]
) -> None:
    name, _ = template
    vm = backend.find(name)
    props = backend.props(
        vm, ["config.hardware.device", "config.guestId", "summary.config.vmPathName", "runtime.powerState"]
    )
    assert props["summary.config.vmPathName"] == f"[LocalDS_0] {name}/{name}.vmx"
    assert props["runtime.powerState"] == "poweredOff"
    assert props["config.guestId"] == "ubuntu64Guest"
    disks = [d for d in props["config.hardware.device"] if type(d).__name__.endswith("VirtualDisk")]
    assert disks[0].capacityInKB == 16 * 2**20 and disks[0].backing.thinProvisioned
    # The simulator shows the same VM the .vmx describes (the emulator built it from the file).
    api_vm = vm_by_name(free_sim.connect(), name)
    (nic,) = devices_of(api_vm, "VirtualEthernetCard")
    assert nic.macAddress == "00:50:56:3f:00:01" and api_vm.config.hardware.numCPU == 2
    with pytest.raises(NotFoundError):
        backend.find("no such vm")
    assert backend.datastore(None) == "LocalDS_0"
    assert backend.network("VM Network") == "VM Network"
    with pytest.raises(NotFoundError, match="have: VM Network"):
        backend.network("Prod")


def test_clone_power_snapshot_and_delete(
    backend: SshVmBackend,
    rec: Recorder,
    shell: SshServer,
    free_sim: SimulatorHost,
    template: tuple[str, bytes],
) -> None:
    tmpl, payload = template
    name = _unique("it's $(new); vm")
    source = backend.props(
        backend.find(tmpl),
        [
            "config.hardware.device",
            "config.hardware.numCPU",
            "config.hardware.memoryMB",
            "config.guestId",
            "config.firmware",
            "config.version",
            "summary.config.vmPathName",
        ],
    )
    ds_dir = free_sim.datastore_dir()
    backend.make_directory(f"[LocalDS_0] {name}")
    backend.copy_disk(f"[LocalDS_0] {tmpl}/{tmpl}.vmdk", f"[LocalDS_0] {name}/{name}.vmdk")
    assert (ds_dir / name / f"{name}-flat.vmdk").read_bytes() == payload  # real bytes, copied on the host
    taken = backend.macs_in_use()
    assert "00:50:56:3f:00:01" in taken
    spec = build_config_spec(
        source=source,
        opts=ProvisionOptions(name=name),
        datastore="LocalDS_0",
        disk_paths=[f"[LocalDS_0] {name}/{name}.vmdk"],
        macs=["00:50:56:3f:00:02"],
        extra_config={"guestinfo.metadata": "e30=", "guestinfo.metadata.encoding": "base64"},
    )
    vm = backend.create_vm(spec)
    assert isinstance(vm, SshVm) and backend.find(name) == vm
    api_vm = vm_by_name(free_sim.connect(), name)
    assert api_vm.config.uuid == spec.uuid
    assert [n.macAddress for n in devices_of(api_vm, "VirtualEthernetCard")] == ["00:50:56:3f:00:02"]
    assert extra_config(api_vm)["guestinfo.metadata"] == "e30="
    uploaded = (ds_dir / name / f"{name}.vmx").read_text()
    assert 'ethernet0.address = "00:50:56:3f:00:02"' in uploaded and "00:50:56:3f:00:01" not in uploaded
    writes = [a for m, a in rec.calls if m == "sftp.write"]
    assert writes and writes[0]["path"].endswith(f"{name}.vmx") and "e30=" not in str(writes)

    backend.power_on(vm)
    assert vm_by_name(free_sim.connect(), name).runtime.powerState == "poweredOn"
    with pytest.raises(ConflictError):  # InvalidPowerState, printed by vim-cmd, as the API route raises
        backend.power_on(vm)
    snap = backend.create_snapshot(vm, "before 'change'; $(x)", description="d", memory=False, quiesce=False)
    assert snapshot_names(free_sim.connect(), vm_by_name(free_sim.connect(), name)) == [
        "before 'change'; $(x)"
    ]
    tree = backend.snapshot_tree(vm)
    assert [(n.name, n.id) for n in tree] == [(snap.name, snap.id)]
    info = backend.props(vm, ["snapshot"])["snapshot"]
    assert info.rootSnapshotList[0].createTime is not None
    backend.remove_snapshot(snap)
    assert snapshot_names(free_sim.connect(), vm_by_name(free_sim.connect(), name)) == []
    backend.reset(vm)
    backend.power_off(vm)
    assert backend.power_state(vm) == "poweredOff"
    backend.destroy(vm)
    assert vm_by_name(free_sim.connect(), name) is None
    assert not (ds_dir / name).exists()
    # Every command the backend recorded is one the host's shell ran, word for word.
    ran = [" ".join(i["argv"]) for i in shell.invocations() if i["tool"] != "sftp"]
    import shlex

    for line in rec.commands():
        words = shlex.split(line)
        assert " ".join(words[1:]) in ran, line


def test_power_on_answers_the_copied_question(
    backend: SshVmBackend,
    rec: Recorder,
    shell: SshServer,
    free_sim: SimulatorHost,
    template: tuple[str, bytes],
) -> None:
    vm = backend.find(template[0])
    shell.configure(ask_copied_question=True)
    backend.power_on(vm)
    assert vm_by_name(free_sim.connect(), template[0]).runtime.powerState == "poweredOn"
    answers = [
        i["argv"] for i in shell.invocations() if i["argv"][:1] == ["vmsvc/message"] and len(i["argv"]) == 4
    ]
    assert answers[-1] == ["vmsvc/message", str(vm.vmid), "_vmx1", "2"]  # "I copied it"
    backend.power_off(vm)


def test_only_disk_growth_is_reconfigured_over_ssh(
    backend: SshVmBackend, template: tuple[str, bytes]
) -> None:
    from ceso.backends.vmomi import vim

    vm = backend.find(template[0])
    with pytest.raises(OperationError) as exc:
        backend.reconfigure(vm, vim().vm.ConfigSpec(numCPUs=4), what="cpus")
    assert exc.value.code == "not_supported_over_ssh"
    (disk,) = [
        d
        for d in backend.props(vm, ["config.hardware.device"])["config.hardware.device"]
        if type(d).__name__.endswith("VirtualDisk")
    ]
    disk.capacityInKB = 20 * 2**20
    change = vim().vm.device.VirtualDeviceSpec(operation="edit", device=disk)
    backend.reconfigure(vm, vim().vm.ConfigSpec(deviceChange=[change]), what="grow disk")
    (grown,) = [
        d
        for d in backend.props(vm, ["config.hardware.device"])["config.hardware.device"]
        if type(d).__name__.endswith("VirtualDisk")
    ]
    assert grown.capacityInKB == 20 * 2**20


def test_the_ssh_route_answers_as_the_api_route_and_the_fake(
    backend: SshVmBackend, template: tuple[str, bytes]
) -> None:
    """The scenario tests/vm/test_fake_backend_fidelity.py runs on the API route and FakeBackend."""
    from ceso.backends.fake import FakeBackend
    from tests.vm.test_fake_backend_fidelity import DS, _scenario

    name, _ = template
    fake = FakeBackend(datastores=(DS,))
    fake.add_vm(name, datastore=DS)
    assert _scenario(backend, name) == _scenario(fake, name)


HARDWARE_VMX = TEMPLATE_VMX.replace('numvcpus = "2"', 'numvcpus = "4"\ncpuid.coresPerSocket = "2"') + (
    'sched.mem.min = "1024"\n'
    'sched.cpu.min = "500"\n'
    'disk.EnableUUID = "TRUE"\n'
    'ethernet0.pciSlotNumber = "192"\n'
    'sata0.present = "TRUE"\n'
    'sata0:0.present = "TRUE"\n'
    'sata0:0.deviceType = "cdrom-image"\n'
    'sata0:0.fileName = "/vmfs/volumes/LocalDS_0/iso/ubuntu-24.04-live-server-amd64.iso"\n'
    'ide1:0.present = "TRUE"\n'
    'ide1:0.deviceType = "cdrom-raw"\n'
    'ide1:0.clientDevice = "TRUE"\n'
    'ide1:0.fileName = "emptyBackingString"\n'
    'ide1:0.startConnected = "FALSE"\n'
    'serial0.present = "TRUE"\n'
    'serial0.fileType = "network"\n'
    'serial0.fileName = "telnet://:7001"\n'
    'serial0.network.endPoint = "server"\n'
    'serial0.yieldOnMsrRead = "TRUE"\n'
    'serial1.present = "TRUE"\n'
    'serial1.fileType = "file"\n'
    'serial1.fileName = "serial1.log"\n'
    'usb.present = "TRUE"\n'
    'ehci.present = "TRUE"\n'
    'usb_xhci.present = "TRUE"\n'
)


def test_a_clone_keeps_the_sources_hardware_on_the_ssh_route_as_on_the_api_route_and_the_fake(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost
) -> None:
    """The hardware scenario of tests/vm/test_fake_backend_fidelity.py, from a .vmx an operator wrote."""
    from tests.ssh.conftest import local_si
    from tests.vm.test_fake_backend_fidelity import (
        EXPECTED,
        HARDWARE_PROPS,
        api_props,
        clone_hardware,
        fake_clone_hardware,
        hardware,
    )

    source, name = _unique("hwsrc"), _unique("hwcopy")
    make_ssh_template(shell, free_sim, source, b"\0" * 4096, mac="00:50:56:3f:00:02", vmx=HARDWARE_VMX)
    try:
        clone_hardware(backend, source, name)
        written = (free_sim.datastore_dir() / name / f"{name}.vmx").read_text()
        for line in (
            'disk.EnableUUID = "TRUE"',
            'ethernet0.pciSlotNumber = "192"',
            'sata0:0.deviceType = "cdrom-image"',
            'sata0:0.fileName = "/vmfs/volumes/LocalDS_0/iso/ubuntu-24.04-live-server-amd64.iso"',
            'sata0:0.startConnected = "FALSE"',
            'ide1:0.deviceType = "cdrom-raw"',
            'ide1:0.clientDevice = "TRUE"',
            'ide1:0.startConnected = "FALSE"',
            'serial0.fileType = "network"',
            'serial0.fileName = "telnet://:7001"',
            'serial0.network.endPoint = "server"',
            'serial0.startConnected = "FALSE"',
            f'serial1.fileName = "/vmfs/volumes/LocalDS_0/{source}/serial1.log"',
            'serial1.startConnected = "FALSE"',
            'usb.present = "TRUE"',
            'ehci.present = "TRUE"',
            'usb_xhci.present = "TRUE"',
        ):
            assert line in written.splitlines(), line
        hostd = hardware(api_props(vm_by_name(free_sim.connect(), name)), source)  # as hostd read the .vmx
        assert hostd == EXPECTED
        assert hardware(backend.props(backend.find(name), HARDWARE_PROPS), source) == EXPECTED
        assert fake_clone_hardware(source, name) == EXPECTED
    finally:
        si = local_si(free_sim)
        destroy_vm(si, name)
        destroy_vm(si, source)
