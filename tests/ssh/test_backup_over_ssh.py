"""Backups and restores on a free-licensed host, over SSH: real worker, Redis, SQL, sshd, simulator.

The host's API is read-only (free license), so every step takes the SSH route:
snapshots with vim-cmd, disks read with ``cat``, restores staged over SFTP and
copied thin with vmkfstools, the new VM registered with vim-cmd. What a user
would check is read back independently: disk bytes and allocation from the
datastore directory, the VM's identity and snapshots through pyVmomi, the
commands the host ran from the emulators' log.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ceso.cloudinit import decode_guestinfo
from tests.conftest import Cli, unique
from tests.ssh.conftest import SshBed, local_si, make_ssh_template
from tests.support.vms import devices_of, extra_config, snapshot_names, vm_by_name, vm_names

MIB = 1 << 20
#: The SQL side of backups is the API route's, tested on both databases there (tests/backup); here the
#: route is what differs, so one database keeps these end-to-end tests short.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _payload() -> bytes:
    """1 MiB random, 6 MiB of zeros written out (not a hole), 1 MiB of text: 8 MiB in all."""
    text = b"".join(b"ceso ssh backup line %07d\n" % i for i in range(MIB // 26 + 1))[:MIB]
    return os.urandom(MIB) + bytes(6 * MIB) + text


def _vm(bed: SshBed, payload: bytes) -> tuple[str, Path]:
    name = unique("src")
    mac = f"00:50:56:3e:{os.urandom(1).hex()}:{os.urandom(1).hex()}"
    make_ssh_template(bed.shell, bed.sim, name, payload, mac=mac)
    flat = bed.datastore_dir / name / f"{name}-flat.vmdk"
    assert flat.stat().st_blocks * 512 >= len(payload)  # written out in full: the zeros take space
    return name, flat


def _target(cli: Cli, tmp_path: Path) -> tuple[str, Path]:
    store = tmp_path / "store"
    store.mkdir()
    name = unique("local")
    added = cli("--json", "target", "add", name, "--type", "local", "--path", str(store))
    assert added.exit_code == 0, added.stdout + added.stderr
    return name, store


def _run(cli: Cli, *args: str) -> Any:
    result = cli("--json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json()


def _snapshots(bed: SshBed, vm: str) -> list[str]:
    si = bed.sim.connect()
    return snapshot_names(si, vm_by_name(si, vm))


def _power(bed: SshBed, vm: str, state: str) -> None:
    machine = vm_by_name(local_si(bed.sim), vm)
    task = machine.PowerOnVM_Task() if state == "on" else machine.PowerOffVM_Task()
    deadline = time.monotonic() + 30
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _ran(bed: SshBed, since: int) -> list[list[str]]:
    return [[i["tool"], *i["argv"]] for i in bed.shell.invocations()[since:]]


@ONE_DATABASE
def test_backup_verify_and_restore_on_a_free_host(cli: Cli, ssh_bed: SshBed, tmp_path: Path) -> None:
    bed = ssh_bed
    payload = _payload()
    source, flat = _vm(bed, payload)
    target, store = _target(cli, tmp_path)
    si = bed.sim.connect()
    original = vm_by_name(si, source)
    (onic,) = devices_of(original, "VirtualEthernetCard")

    dry = _run(cli, "--dry-run", "backup", "create", source, "--target", target)
    assert any("vim-cmd vmsvc/snapshot.create" in line for line in dry["plan"]), dry

    # Cold: the VM is off; its disk is read with cat while nothing runs.
    mark = len(bed.shell.invocations())
    cold = _run(cli, "backup", "create", source, "--target", target, "--timeout", "120")
    assert cold["state"] == "succeeded", cold
    assert cold["result"]["kind"] == "cold" and cold["result"]["route"] == "ssh"
    assert cold["result"]["logical_bytes"] >= len(payload)
    ran = _ran(bed, mark)
    assert ["cat", f"/vmfs/volumes/LocalDS_0/{source}/{source}-flat.vmdk"] in ran
    assert not any(cmd[:2] == ["vim-cmd", "vmsvc/snapshot.create"] for cmd in ran)
    assert {s["route"] for s in cold["steps"] if "route" in s} == {"ssh"}
    assert _run(cli, "backup", "verify", cold["result"]["backup_id"])["status"] == "verified"

    # Hot: a snapshot holds the base disk while it is read, and is gone afterwards.
    _power(bed, source, "on")
    mark = len(bed.shell.invocations())
    hot = _run(cli, "backup", "create", source, "--target", target, "--timeout", "120")
    assert hot["state"] == "succeeded", hot
    assert hot["result"]["kind"] == "hot" and hot["result"]["route"] == "ssh"
    ran = _ran(bed, mark)
    (create,) = [cmd for cmd in ran if cmd[:2] == ["vim-cmd", "vmsvc/snapshot.create"]]
    # No memory, not quiesced (Tools do not run in this guest).
    assert create[3] == f"ceso-backup-{hot['id']}" and create[5:] == ["0", "0"]
    assert any(cmd[:2] == ["vim-cmd", "vmsvc/snapshot.remove"] for cmd in ran)
    assert [s["name"] for s in hot["steps"]].count("remove snapshot") == 1
    assert _snapshots(bed, source) == []
    assert _run(cli, "backup", "verify", hot["result"]["backup_id"])["status"] == "verified"
    entries = {b["id"]: b for b in _run(cli, "backup", "list", "--vm", source)}
    assert {entries[j["id"]]["status"] for j in (cold, hot)} == {"verified"}
    assert (store / source / hot["id"] / "manifest.json").is_file()

    # As a new VM: staged over SFTP, copied thin on the host, registered, asked "moved or copied?".
    bed.shell.configure(ask_copied_question=True)
    name = unique("restored")
    plan = _run(cli, "--dry-run", "backup", "restore", hot["id"], "--as", name)["plan"]
    assert any("vmkfstools -i STAGED DST -d thin" in line for line in plan), plan
    mark = len(bed.shell.invocations())
    restored = _run(cli, "backup", "restore", hot["id"], "--as", name, "--ip", "192.0.2.60/24",
                    "--gateway", "192.0.2.1", "--timeout", "180")  # fmt: skip
    assert restored["state"] == "succeeded", restored
    result = restored["result"]
    assert result["route"] == "ssh" and "vmkfstools" in result["disks_written"]
    new_flat = bed.datastore_dir / name / f"{source}-flat.vmdk"
    assert new_flat.read_bytes() == payload
    assert new_flat.stat().st_blocks * 512 < 4 * MIB  # thin: the 6 MiB of zeros are not allocated
    assert not (bed.datastore_dir / name / "ceso-restore-staging").exists()
    ran = _ran(bed, mark)
    assert ["vmkfstools", "-i", f"/vmfs/volumes/LocalDS_0/{name}/ceso-restore-staging/{source}.vmdk",
            f"/vmfs/volumes/LocalDS_0/{name}/{source}.vmdk", "-d", "thin"] in ran  # fmt: skip
    assert any(cmd[:2] == ["vim-cmd", "solo/registervm"] for cmd in ran)
    assert any(cmd[:2] == ["vim-cmd", "vmsvc/message"] and len(cmd) == 5 for cmd in ran)  # answered
    si = bed.sim.connect()
    vm = vm_by_name(si, name)
    assert vm.runtime.powerState == "poweredOn" and vm.config.uuid != original.config.uuid
    (nic,) = devices_of(vm, "VirtualEthernetCard")
    assert nic.macAddress != onic.macAddress and nic.macAddress.startswith("00:50:56:")
    meta = yaml.safe_load(decode_guestinfo(extra_config(vm))["metadata"])
    assert meta["instance-id"] == result["instance_id"]
    assert meta["network"]["ethernets"]["nic0"]["addresses"] == ["192.0.2.60/24"]
    bed.shell.reset()

    # In place: the original, powered off and damaged, gets its disk back and keeps its identity.
    _power(bed, source, "off")
    with flat.open("r+b") as fh:
        fh.write(b"damaged" * 1000)
    in_place = _run(
        cli, "backup", "restore", cold["id"], "--in-place", "--yes", "--no-power-on", "--timeout", "180"
    )
    assert in_place["state"] == "succeeded", in_place
    assert in_place["result"]["route"] == "ssh"
    assert flat.read_bytes() == payload
    after = vm_by_name(bed.sim.connect(), source)
    assert after.config.uuid == original.config.uuid
    assert [n.macAddress for n in devices_of(after, "VirtualEthernetCard")] == [onic.macAddress]
    assert not (bed.datastore_dir / source / "ceso-restore-staging").exists()


@ONE_DATABASE
def test_a_restore_as_a_new_vm_carries_the_sources_hardware_on_a_free_host(
    cli: Cli, ssh_bed: SshBed, tmp_path: Path
) -> None:
    """The clone hardware scenario (tests/ssh/test_backend.py's .vmx): backed up, restored --as over SSH."""
    from tests.ssh.test_backend import HARDWARE_VMX
    from tests.vm.test_fake_backend_fidelity import EXPECTED, api_props, hardware

    bed = ssh_bed
    source = unique("hwsrc")
    make_ssh_template(bed.shell, bed.sim, source, b"\0" * 4096, mac="00:50:56:3f:00:03", vmx=HARDWARE_VMX)
    target, _ = _target(cli, tmp_path)
    backup = _run(cli, "backup", "create", source, "--target", target, "--timeout", "120")
    assert backup["state"] == "succeeded" and backup["result"]["route"] == "ssh", backup
    name = unique("restored")
    restored = _run(cli, "backup", "restore", backup["id"], "--as", name, "--no-power-on", "--timeout", "180")
    assert restored["state"] == "succeeded" and restored["result"]["route"] == "ssh", restored
    written = (bed.datastore_dir / name / f"{name}.vmx").read_text().splitlines()
    for line in (
        'disk.EnableUUID = "TRUE"',
        'ethernet0.pciSlotNumber = "192"',
        'sata0:0.deviceType = "cdrom-image"',
        'sata0:0.fileName = "/vmfs/volumes/LocalDS_0/iso/ubuntu-24.04-live-server-amd64.iso"',
        'sata0:0.startConnected = "FALSE"',
        'ide1:0.clientDevice = "TRUE"',
        'serial1.fileType = "file"',
        f'serial1.fileName = "/vmfs/volumes/LocalDS_0/{source}/serial1.log"',
        'serial1.startConnected = "FALSE"',
        'usb.present = "TRUE"',
        'ehci.present = "TRUE"',
        'usb_xhci.present = "TRUE"',
    ):
        assert line in written, line
    vm = vm_by_name(bed.sim.connect(), name)
    assert hardware(api_props(vm), source) == EXPECTED  # as hostd read the restored .vmx
    assert vm.config.uuid != vm_by_name(bed.sim.connect(), source).config.uuid
    assert not any(line.startswith("ethernet0.address ") and "00:50:56:3f:00:03" in line for line in written)


def _wait_for_disk_copy(cli: Cli, job_id: str) -> None:
    deadline = time.monotonic() + 90
    while not (_run(cli, "job", "status", job_id)["current_step"] or "").endswith("-flat.vmdk"):
        assert time.monotonic() < deadline
        time.sleep(0.2)


@ONE_DATABASE
def test_no_snapshot_outlives_a_cancel_or_a_killed_worker(
    cli: Cli, ssh_bed: SshBed, tmp_path: Path, start_worker: Any
) -> None:
    bed = ssh_bed
    source, _ = _vm(bed, _payload())
    target, _ = _target(cli, tmp_path)
    _power(bed, source, "on")
    bed.shell.configure(hang={"cat disk": 3})  # the disk's read starts late: time to cancel or kill

    job_id = _run(cli, "backup", "create", source, "--target", target, "--no-wait")["id"]
    _wait_for_disk_copy(cli, job_id)
    assert any(n.startswith("ceso-backup-") for n in _snapshots(bed, source))
    _run(cli, "job", "cancel", job_id)
    deadline = time.monotonic() + 90
    while (job := _run(cli, "job", "status", job_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == "cancelled", job
    assert "remove snapshot" in [s["name"] for s in job["steps"]]
    assert _snapshots(bed, source) == []

    job_id = _run(cli, "backup", "create", source, "--target", target, "--no-wait")["id"]
    _wait_for_disk_copy(cli, job_id)
    bed.worker.kill()
    assert any(n.startswith("ceso-backup-") for n in _snapshots(bed, source))  # the orphan, for now
    start_worker(bed.host, concurrency=1)  # its relay publishes the dead worker's job again
    job = _run(cli, "job", "wait", job_id, "--timeout", "180")
    assert job["state"] == "succeeded" and job["attempts"] == 2, job
    assert "remove leftover snapshot" in [s["name"] for s in job["steps"]]
    assert _snapshots(bed, source) == []
    assert _run(cli, "backup", "verify", job_id)["status"] == "verified"


# -- the data path and the emulator, without a worker ----------------------------------------------
def test_disk_stream_checks_its_length_and_the_file(ssh_client: Any, free_sim_dir: Path) -> None:
    from ceso.errors import ConflictError, NotFoundError, OperationError
    from ceso.ssh.stream import SshFileReader, file_size, upload

    folder = free_sim_dir / unique("stream")
    folder.mkdir()
    data = os.urandom(3 * MIB + 17)
    (folder / "d-flat.vmdk").write_bytes(data)
    remote = f"/vmfs/volumes/LocalDS_0/{folder.name}/d-flat.vmdk"

    def read(size: int) -> bytes:
        reader = SshFileReader(ssh_client, remote, size=size)
        out, buf = bytearray(), bytearray(MIB)
        try:
            while n := reader.readinto(buf):
                out += buf[:n]
        finally:
            reader.close()
        return bytes(out)

    assert file_size(ssh_client, remote) == len(data) and read(len(data)) == data
    for wrong in (len(data) + 1, len(data) - 1):  # the file changed since its size was read
        with pytest.raises(OperationError):
            read(wrong)
    with pytest.raises(NotFoundError):
        SshFileReader(ssh_client, remote.replace("d-flat", "gone"), size=1).readinto(bytearray(1))

    # Upload: zero runs stay holes, the bytes are exact, nothing half-written under the name.
    body = [os.urandom(MIB), bytes(4 * MIB), b"tail"]
    dest = f"/vmfs/volumes/LocalDS_0/{folder.name}/up-flat.vmdk"
    upload(ssh_client, dest, sum(map(len, body)), iter(body), replace=False)
    written = folder / "up-flat.vmdk"
    assert written.read_bytes() == b"".join(body)
    assert written.stat().st_blocks * 512 < 3 * MIB
    with pytest.raises(ConflictError):
        upload(ssh_client, dest, 1, iter([b"x"]), replace=False)
    with pytest.raises(OperationError):
        upload(ssh_client, dest, 10, iter([b"short"]), replace=True)
    assert written.read_bytes() == b"".join(body) and not (folder / "up-flat.vmdk.ceso-part").exists()

    # The same writer lays pieces at their offsets (an import's grains): a file ending in a hole
    # keeps its length, a piece of zeros is not sent, and one past the size is refused.
    from ceso.ssh.files import write_sparse

    pieces = [(2 * MIB, b"grain"), (3 * MIB, bytes(MIB)), (0, b"head")]
    sparse = f"/vmfs/volumes/LocalDS_0/{folder.name}/sp-flat.vmdk"
    assert write_sparse(ssh_client, sparse, iter(pieces), 8 * MIB) == len(b"grain") + len(b"head")
    laid = (folder / "sp-flat.vmdk").read_bytes()
    assert laid == b"head" + bytes(2 * MIB - 4) + b"grain" + bytes(6 * MIB - 5)
    assert (folder / "sp-flat.vmdk").stat().st_blocks * 512 < MIB
    with pytest.raises(OperationError, match="outside"):
        write_sparse(ssh_client, sparse, iter([(8 * MIB - 1, b"xy")]), 8 * MIB, replace=True)
    assert (folder / "sp-flat.vmdk").read_bytes() == laid
    assert sorted(p.name for p in folder.iterdir()) == ["d-flat.vmdk", "sp-flat.vmdk", "up-flat.vmdk"]


def test_emulated_snapshot_commands_take_only_esxi_arguments(shell: Any) -> None:
    from tests.ssh.conftest import emulate

    for args in (
        ("vmsvc/snapshot.create", "1", "n", "d", "0", "0", "extra"),
        ("vmsvc/snapshot.create", "1", "n", "d", "yes", "0"),
        ("vmsvc/snapshot.remove", "1", "2", "3"),
        ("vmsvc/snapshot.remove", "1", "x"),
        ("vmsvc/snapshot.get", "1", "extra"),
        ("vmsvc/snapshot.revert", "1", "2"),
    ):
        done = emulate(shell, "vim-cmd", *args)
        assert done.returncode == 1 and done.stderr.startswith("Usage: snapshot."), (args, done)
    assert emulate(shell, "vim-cmd", "vmsvc/snapshot.create").stderr.strip() == "Insufficient arguments."


@ONE_DATABASE
def test_a_drill_on_a_free_host_restores_boots_and_removes_its_vm(
    cli: Cli, ssh_bed: SshBed, tmp_path: Path
) -> None:
    bed = ssh_bed
    boot = bytearray(_payload())
    boot[510:512] = b"\x55\xaa"  # the guest boots (see ops/simulator/main.go)
    source, flat = _vm(bed, bytes(boot))
    target, _ = _target(cli, tmp_path)
    backup = _run(cli, "backup", "create", source, "--target", target, "--timeout", "120")
    mark = len(bed.shell.invocations())
    drill = _run(cli, "backup", "drill", "--vm", source, "--boot-timeout", "30", "--timeout", "120")
    assert drill["state"] == "succeeded", drill
    assert drill["result"]["route"] == "ssh" and drill["result"]["drill"]["status"] == "passed"
    assert drill["result"]["backup_id"] == backup["result"]["backup_id"]
    name = drill["result"]["name"]
    ran = _ran(bed, mark)
    assert any(c[:2] == ["vim-cmd", "vmsvc/get.guest"] for c in ran)  # Tools read in the shell
    assert any(c[:2] == ["vim-cmd", "vmsvc/destroy"] for c in ran)
    assert name not in vm_names(local_si(bed.sim))
    assert not (bed.datastore_dir / name).exists()
    assert flat.read_bytes() == bytes(boot)  # the source is untouched
