"""What real ESXi hosts do that a well-behaved emulator would not, through a real sshd and the emulators.

Each test stands for one behaviour of real hosts (docs/ssh-route.md, "What real hosts do"): the
emulators are made to behave that way and SshVmBackend must cope. Effects are read back
through the simulator's API and the datastore directory, not through ceso.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ceso.backends.ssh import SshVmBackend
from ceso.ssh.client import SshClient
from tests.ssh.conftest import TEMPLATE_VMX, local_si, make_ssh_template
from tests.support.simulator import SimulatorHost
from tests.support.sshd import SshServer
from tests.support.vms import destroy_vm, vm_by_name


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, args: dict[str, Any]) -> None:
        self.calls.append((method, args))


@pytest.fixture
def backend(ssh_client: SshClient) -> SshVmBackend:
    return SshVmBackend(ssh_client, Recorder(), task_timeout=60)


@pytest.fixture
def made(free_sim: SimulatorHost) -> Iterator[list[str]]:
    """Names of VMs a test made; destroyed afterwards."""
    names: list[str] = []
    yield names
    si = local_si(free_sim)
    for name in names:
        if vm_by_name(si, name) is not None:
            destroy_vm(si, name)


def template(
    shell: SshServer, sim: SimulatorHost, made: list[str], name: str, vmx: str = TEMPLATE_VMX
) -> str:
    make_ssh_template(shell, sim, name, os.urandom(4096), mac="00:50:56:3f:00:09", vmx=vmx)
    made.append(name)
    return name


def test_inventory_past_invalid_registrations_and_names_with_brackets(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    name = template(shell, free_sim, made, _unique("web01 [old]  (2): x"))
    shell.configure(invalid_vms=[96, 97])  # one line before the header, one after the rows
    vm = backend.find(name)
    assert vm.name == name and vm.vmx_path == f"[LocalDS_0] {name}/{name}.vmx"
    assert backend.props(vm, ["config.guestId"])["config.guestId"] == "ubuntu64Guest"
    out = [i for i in shell.invocations() if i["argv"] == ["vmsvc/getallvms"]]
    assert out  # the inventory came from the emulator, which printed both "Skipping" lines


def clone(backend: SshVmBackend, source: str, name: str, made: list[str]) -> Any:
    """What provisioning does on this route: copy every disk, write the new .vmx, register it."""
    from ceso.backends.protocol import SOURCE_PROPERTIES
    from ceso.backends.vmomi import vim
    from ceso.operations.provision import ProvisionOptions, build_config_spec

    props = backend.props(backend.find(source), SOURCE_PROPERTIES)
    disks = [d for d in props["config.hardware.device"] if isinstance(d, vim().vm.device.VirtualDisk)]
    paths = [f"[LocalDS_0] {name}/{name}{'' if i == 0 else f'_{i}'}.vmdk" for i in range(len(disks))]
    backend.make_directory(f"[LocalDS_0] {name}")
    made.append(name)
    for disk, path in zip(disks, paths, strict=True):
        backend.copy_disk(disk.backing.fileName, path)
    nics = [d for d in props["config.hardware.device"] if isinstance(d, vim().vm.device.VirtualEthernetCard)]
    spec = build_config_spec(
        source=props,
        opts=ProvisionOptions(name=name),
        datastore="LocalDS_0",
        disk_paths=paths,
        macs=[f"00:50:56:3e:00:{i:02x}" for i in range(len(nics))],
        extra_config={},
    )
    return backend.create_vm(spec)


@pytest.mark.parametrize(
    ("guest_os", "guest_id"),
    [
        ("windows9srv-64", "windows9Server64Guest"),
        ("winhyperv", "windowsHyperVGuest"),
        ("vmware-photon-64", "vmwarePhoton64Guest"),
        ("longhorn-64", "winLonghorn64Guest"),
    ],
)
def test_guest_os_values_of_real_vmx_files_survive_a_clone(
    backend: SshVmBackend,
    shell: SshServer,
    free_sim: SimulatorHost,
    made: list[str],
    guest_os: str,
    guest_id: str,
) -> None:
    vmx = TEMPLATE_VMX.replace('guestOS = "ubuntu-64"', f'guestOS = "{guest_os}"')
    source = template(shell, free_sim, made, _unique("win"), vmx)
    assert backend.props(backend.find(source), ["config.guestId"])["config.guestId"] == guest_id
    name = _unique("copy")
    clone(backend, source, name, made)
    written = (free_sim.datastore_dir() / name / f"{name}.vmx").read_text()
    assert f'guestOS = "{guest_os}"' in written.replace("winHyperV", "winhyperv")
    assert vm_by_name(free_sim.connect(), name).config.guestId == guest_id  # as hostd read it


def test_the_emulator_refuses_a_guest_os_hostd_does_not_know(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    from tests.ssh.conftest import emulate

    vmx = TEMPLATE_VMX.replace('guestOS = "ubuntu-64"', 'guestOS = "windows9srv--64"')
    name = _unique("bad")
    folder = free_sim.datastore_dir() / name
    folder.mkdir()
    (folder / f"{name}.vmx").write_text(vmx.format(name=name, mac="00:50:56:3f:00:0a", tail="01"))
    done = emulate(shell, "vim-cmd", "solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx")
    assert done.returncode != 0 and "guestOS" in done.stdout
    assert vm_by_name(free_sim.connect(), name) is None


def test_no_message_with_a_nonzero_exit_is_no_question(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    source = template(shell, free_sim, made, _unique("src"))
    shell.configure(no_message_exit_status=1)  # "No message." and exit 1, as some hosts do
    vm = clone(backend, source, _unique("copy"), made)  # registration reads the pending question
    backend.power_on(vm)
    assert vm_by_name(free_sim.connect(), vm.name).runtime.powerState == "poweredOn"
    backend.power_off(vm)


def test_an_unnamed_vmfs_volume_is_a_datastore(
    backend: SshVmBackend, shell: SshServer, tmp_path: Any
) -> None:
    volume = "6935c9b0-1234abcd-9f00-005056b36949"
    (tmp_path / "vol").mkdir()
    datastores = {**json.loads(shell.config_path.read_text())["datastores"], volume: str(tmp_path / "vol")}
    shell.configure(unnamed_volumes=[volume], datastores=datastores)
    assert backend.datastore(volume) == volume
    backend.make_directory(f"[{volume}] new-vm")
    assert (tmp_path / "vol" / "new-vm").is_dir()  # the path under its UUID reaches the volume


def test_snapshot_times_are_utc_and_a_malformed_tree_is_unexpected_output(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from ceso.errors import OperationError

    vm = backend.find(template(shell, free_sim, made, _unique("snap")))
    backend.create_snapshot(vm, "s1")
    (node,) = backend.snapshot_tree(vm)
    assert node.createTime is not None and node.createTime.tzinfo is not None
    assert abs(node.createTime - datetime.now(UTC)) < timedelta(minutes=5)  # the simulator's clock is UTC
    garbage = "Get Snapshot:\n|-ROOT\n--Snapshot Name        : s1\n--Snapshot Id          : 1a\n"
    shell.configure(faults={"vim-cmd vmsvc/snapshot.get": {"exit": 0, "stdout": garbage}})
    with pytest.raises(OperationError) as exc:
        backend.snapshot_tree(vm)
    assert exc.value.code == "unexpected_output"


def test_guest_ips_skip_link_local_and_loopback_and_put_the_configured_first(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    from ceso.backends.guest import wait_for_ip
    from ceso.errors import TimeoutExpiredError

    vm = backend.find(template(shell, free_sim, made, _unique("ip")))
    mac = "00:50:56:3f:00:09"
    # What real tools report while the guest's network is still coming up: link-local and loopback.
    shell.configure(guest_reports={vm.name: [[mac, ["fe80::250:56ff:fe3f:9", "127.0.0.1", "::1"]]]})
    with pytest.raises(TimeoutExpiredError):
        wait_for_ip(backend, vm, expected=[], timeout=1)
    reported = ["fe80::250:56ff:fe3f:9", "169.254.10.1", "2001:db8::5", "192.0.2.60"]
    shell.configure(guest_reports={vm.name: [[mac, reported], ["00:50:56:3f:00:0a", ["192.0.2.61"]]]})
    assert wait_for_ip(backend, vm, expected=[], timeout=5) == ["2001:db8::5", "192.0.2.60", "192.0.2.61"]
    assert wait_for_ip(backend, vm, expected=["192.0.2.61"], timeout=5) == [
        "192.0.2.61", "2001:db8::5", "192.0.2.60",
    ]  # fmt: skip


def test_files_are_put_in_place_with_posix_rename_on_a_filesystem_without_hard_links(
    ssh_client: SshClient, shell: SshServer, free_sim: SimulatorHost
) -> None:
    from ceso.errors import ConflictError
    from ceso.ssh import files

    folder = free_sim.datastore_dir() / _unique("files")
    folder.mkdir()
    path = f"/vmfs/volumes/LocalDS_0/{folder.name}/x.vmx"
    files.write_file(ssh_client, path, b'displayName = "one"\n')
    assert (folder / "x.vmx").read_bytes() == b'displayName = "one"\n'
    with pytest.raises(ConflictError):
        files.write_file(ssh_client, path, b"two\n")
    files.write_file(ssh_client, path, b'displayName = "two"\n', replace=True)
    assert (folder / "x.vmx").read_bytes() == b'displayName = "two"\n'
    assert sorted(p.name for p in folder.iterdir()) == ["x.vmx"]  # no part file left behind
    ops = [i["argv"][0] for i in shell.invocations() if i["tool"] == "sftp" and folder.name in i["argv"][-1]]
    assert "posix-rename-to" in ops and "rename-to" not in ops


def test_disks_on_ide_sata_and_nvme_are_all_cloned(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    from pathlib import Path

    from tests.ssh.conftest import DESCRIPTOR, emulate

    vmx = (Path(__file__).with_name("fixtures") / "vmx_ide_sata_nvme.vmx").read_text()
    name = _unique("imported")
    folder = free_sim.datastore_dir() / name
    folder.mkdir()
    payloads = {}
    for suffix in ("", "_1", "_2"):  # one disk each on ide0:0, sata0:1 and nvme0:0
        disk = f"{name}{suffix}"
        (folder / f"{disk}.vmdk").write_text(DESCRIPTOR.format(name=disk, sectors=2**21, tail="0a"))
        payloads[suffix] = os.urandom(2048) + suffix.encode()
        (folder / f"{disk}-flat.vmdk").write_bytes(payloads[suffix])
    (folder / f"{name}.vmx").write_text(vmx.format(name=name, mac="00:50:56:3f:00:0b", tail="0b"))
    done = emulate(shell, "vim-cmd", "solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx")
    assert done.returncode == 0, done.stdout + done.stderr
    made.append(name)
    new = _unique("copy")
    clone(backend, name, new, made)
    copied = sorted((free_sim.datastore_dir() / new).glob("*-flat.vmdk"))
    assert sorted(p.read_bytes() for p in copied) == sorted(payloads.values())
    assert (free_sim.datastore_dir() / new / f"{new}-flat.vmdk").read_bytes() == payloads[""]  # IDE first
    api_vm = vm_by_name(free_sim.connect(), new)
    by_key = {d.key: d for d in api_vm.config.hardware.device}
    controllers = sorted(
        type(by_key[d.controllerKey]).__name__.rsplit(".", 1)[-1]
        for d in api_vm.config.hardware.device
        if type(d).__name__.endswith("VirtualDisk")
    )
    # (the simulator shows its NVMe controller as a plain VirtualController)
    assert controllers[0] == "VirtualAHCIController" and controllers[2] == "VirtualIDEController"
    written = (free_sim.datastore_dir() / new / f"{new}.vmx").read_text()
    assert f'ide0:0.fileName = "{new}.vmdk"' in written
    # The installer ISO on sata0:0 is a CD-ROM, not a disk: carried as one, disconnected.
    lines = written.splitlines()
    assert 'sata0:0.deviceType = "cdrom-image"' in lines and 'sata0:0.startConnected = "FALSE"' in lines
    assert 'sata0:0.fileName = "/vmfs/volumes/LocalDS_0/iso/install.iso"' in lines
    assert 'sata0:1.fileName = "' in written and 'nvme0:0.fileName = "' in written


def test_the_copy_timeout_grows_with_the_disk(
    ssh_client: SshClient, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    name = template(shell, free_sim, made, _unique("big"))
    flat = free_sim.datastore_dir() / name / f"{name}-flat.vmdk"
    with open(flat, "r+b") as fh:  # a 1 GiB thin disk: sparse, as VMFS keeps it
        fh.truncate(2**30)
    backend = SshVmBackend(ssh_client, Recorder(), task_timeout=2)
    # At the slowest rate a host copies (50 MiB/s), this disk may take 20 s: longer than task_timeout.
    shell.configure(hang={"vmkfstools -i": 4})  # a copy slower than task_timeout, within the floor
    new = _unique("copy")
    backend.make_directory(f"[LocalDS_0] {new}")
    made.append(new)
    backend.copy_disk(f"[LocalDS_0] {name}/{name}.vmdk", f"[LocalDS_0] {new}/{new}.vmdk")
    copied = free_sim.datastore_dir() / new / f"{new}-flat.vmdk"
    with open(copied, "rb") as got, open(flat, "rb") as want:
        assert copied.stat().st_size == 2**30 and got.read(4096) == want.read(4096)
    assert copied.stat().st_blocks * 512 < 2**26  # thin stays thin


def test_cores_per_socket_and_reservations_are_carried_and_an_unknown_nic_refused(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    from ceso.errors import InvalidInputError

    vmx = TEMPLATE_VMX.replace('numvcpus = "2"', 'numvcpus = "4"\ncpuid.coresPerSocket = "2"')
    vmx += 'sched.mem.min = "1024"\nsched.cpu.min = "500"\n'
    source = template(shell, free_sim, made, _unique("hw"), vmx)
    name = _unique("copy")
    clone(backend, source, name, made)
    written = (free_sim.datastore_dir() / name / f"{name}.vmx").read_text()
    assert 'cpuid.coresPerSocket = "2"' in written and 'numvcpus = "4"' in written
    assert 'sched.mem.min = "1024"' in written and 'sched.cpu.min = "500"' in written
    api_vm = vm_by_name(free_sim.connect(), name)  # as hostd read the new .vmx
    assert api_vm.config.hardware.numCoresPerSocket == 2
    assert api_vm.config.memoryAllocation.reservation == 1024

    pvrdma = template(shell, free_sim, made, _unique("rdma"), TEMPLATE_VMX.replace('"vmxnet3"', '"vrdma"'))
    with pytest.raises(InvalidInputError, match=r'ethernet0\.virtualDev = "vrdma"'):
        clone(backend, pvrdma, _unique("copy"), made)


def test_a_host_task_left_by_a_timed_out_vim_cmd_is_cancelled(
    ssh_client: SshClient, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    from ceso.errors import TimeoutExpiredError
    from tests.ssh.conftest import emulate

    rec = Recorder()
    backend = SshVmBackend(ssh_client, rec, task_timeout=2)
    vm = backend.find(template(shell, free_sim, made, _unique("slow")))
    # hostd takes 30 s over this snapshot; vim-cmd is killed at 2 s, the host task goes on.
    shell.configure(hang={"vim-cmd vmsvc/snapshot.create": 30})
    with pytest.raises(TimeoutExpiredError) as exc:
        backend.create_snapshot(vm, "slow")
    (task,) = exc.value.details["host_tasks"]["cancelled"]
    assert task.startswith(f"haTask-{vm.vmid}-vim.VirtualMachine.createSnapshot-")
    assert exc.value.details["host_tasks"]["still_running"] == []
    info = emulate(shell, "vim-cmd", "vimsvc/task_info", task)
    assert 'state = "error"' in info.stdout  # cancelled on the host, not left running
    cancels = [i["argv"] for i in shell.invocations() if i["argv"][:1] == ["vimsvc/task_cancel"]]
    assert ["vimsvc/task_cancel", task] in cancels
    assert any("vimsvc/task_cancel" in c for c in [a["command"] for m, a in rec.calls if m == "ssh"])


@pytest.mark.parametrize(
    "lines",
    [
        "",
        'serial0.present = "TRUE"\nserial0.fileType = "thinprint2"\n',
        'ide1:0.present = "TRUE"\nide1:0.deviceType = "cdrom-floppy"\n',
        'ethernet0.pciSlotNumber = "slot"\n',
        'usb.present = "yes please"\n',
    ],
)
def test_the_emulated_hostd_refuses_device_lines_it_does_not_know(
    shell: SshServer, free_sim: SimulatorHost, lines: str
) -> None:
    from tests.ssh.conftest import DESCRIPTOR, emulate

    name = _unique("bad")
    folder = free_sim.datastore_dir() / name
    folder.mkdir()
    (folder / f"{name}.vmx").write_text(
        TEMPLATE_VMX.format(name=name, mac="00:50:56:3f:00:0a", tail="0a") + lines
    )
    (folder / f"{name}.vmdk").write_text(DESCRIPTOR.format(name=name, sectors=2048, tail="0a"))
    (folder / f"{name}-flat.vmdk").write_bytes(b"")
    done = emulate(shell, "vim-cmd", "solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx")
    if not lines:  # the same files without the bad line register: the line is what is refused
        assert done.returncode == 0, done.stdout + done.stderr
        destroy_vm(local_si(free_sim), name)
        return
    assert done.returncode != 0 and "Failed to" in done.stdout + done.stderr
    assert vm_by_name(free_sim.connect(), name) is None
