"""Backups end to end: real worker, Redis, SQL (both databases), the simulator; effects read back directly."""

from __future__ import annotations

import json

import pytest
import yaml

from ceso.cloudinit import decode_guestinfo
from tests.backup.bed import BackupBed, payload
from tests.conftest import unique
from tests.support.vms import devices_of, extra_config, make_template, vm_by_name


def test_round_trip_every_codec_and_encryption(backup_bed: BackupBed) -> None:
    bed = backup_bed
    data = payload()
    source = bed.make_vm(data)
    original = vm_by_name(bed.si, source)
    for compress, encrypt in (("zstd", False), ("gzip", False), ("none", False), ("zstd", True)):
        args = [
            "backup",
            "create",
            source,
            "--target",
            bed.target,
            "--compress",
            compress,
            "--timeout",
            "120",
        ]
        job = bed.run(*args, *(["--encrypt"] if encrypt else []))
        assert job["state"] == "succeeded", job
        backup_id = job["result"]["backup_id"]
        assert job["result"]["kind"] == "cold" and job["result"]["logical_bytes"] >= len(data)
        (entry,) = [b for b in bed.run("backup", "list", "--vm", source) if b["id"] == backup_id]
        assert entry["status"] == "completed" and entry["host"] == bed.host and entry["kind"] == "cold"
        assert entry["stored_bytes"] > 0 and entry["encrypted"] is encrypt
        if compress != "none":
            assert entry["stored_bytes"] < entry["logical_bytes"] * 0.8
        stored = sorted(p.name for p in (bed.store / source / backup_id).iterdir())
        assert "manifest.json" in stored and not any(n.endswith(".partial") for n in stored)
        if encrypt:
            flat = next(p for p in (bed.store / source / backup_id).iterdir() if "-flat" in p.name)
            assert data[-4096:] not in flat.read_bytes()

        name = unique("restored")
        restored = bed.run(
            "backup",
            "restore",
            backup_id,
            "--as",
            name,
            "--ip",
            "192.0.2.50/24",
            "--gateway",
            "192.0.2.1",
            "--no-power-on",
            "--timeout",
            "120",
        )
        assert restored["state"] == "succeeded", restored
        assert (bed.datastore_dir / name / f"{source}-flat.vmdk").read_bytes() == data
        # Staged, then copied thin by the host: a thin disk stays thin (the simulator copies every byte).
        assert "CopyVirtualDisk_Task" in restored["result"]["disks_written"]
        (copy,) = [s for s in restored["steps"] if s["name"] == "copy disk 1/1 thin"]
        (call,) = [c for c in copy["calls"] if c["method"] == "VirtualDiskManager.CopyVirtualDisk_Task"]
        assert call["args"]["destSpec.diskType"] == "thin"
        assert call["args"]["sourceName"].endswith(f"{name}/ceso-restore-staging/{source}.vmdk")
        assert not (bed.datastore_dir / name / "ceso-restore-staging").exists()
        vm = vm_by_name(bed.si, name)
        assert vm.config.uuid != original.config.uuid
        (nic,) = devices_of(vm, "VirtualEthernetCard")
        (onic,) = devices_of(original, "VirtualEthernetCard")
        assert nic.macAddress != onic.macAddress and nic.macAddress.startswith("00:50:56:")
        meta = yaml.safe_load(decode_guestinfo(extra_config(vm))["metadata"])
        assert meta["instance-id"] == restored["result"]["instance_id"]
        eth = meta["network"]["ethernets"]["nic0"]
        assert eth["match"]["macaddress"] == nic.macAddress and eth["addresses"] == ["192.0.2.50/24"]
        assert vm.config.hardware.numCPU == original.config.hardware.numCPU
        assert vm.runtime.powerState == "poweredOff"


def test_hot_backup_removes_only_its_own_snapshot(backup_bed: BackupBed) -> None:
    bed = backup_bed
    source = bed.make_vm(payload(1 << 20), power_on=True)
    vm = vm_by_name(bed.si, source)
    task = vm.CreateSnapshot_Task(name="users-own", description="", memory=False, quiesce=False)
    assert task.info.state == "success"
    job = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")
    assert job["state"] == "succeeded", job
    assert job["result"]["kind"] == "hot"
    steps = [s["name"] for s in job["steps"]]
    assert steps.index("snapshot") < steps.index("remove snapshot")
    from tests.backup.test_failures import snapshot_names

    assert snapshot_names(bed, source) == ["users-own"]
    assert vm_by_name(bed.si, source).runtime.powerState == "poweredOn"


def test_verify_finds_a_flipped_byte(backup_bed: BackupBed) -> None:
    bed = backup_bed
    source = bed.make_vm(payload(1 << 20))
    job = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")
    backup_id = job["result"]["backup_id"]
    assert bed.run("backup", "verify", backup_id[:8])["status"] == "verified"
    (entry,) = bed.run("backup", "list", "--status", "verified", "--vm", source)
    assert entry["id"] == backup_id
    flat = next(p for p in (bed.store / source / backup_id).iterdir() if "-flat" in p.name)
    damaged = bytearray(flat.read_bytes())
    damaged[len(damaged) // 2] ^= 0x40
    flat.write_bytes(bytes(damaged))
    result = bed.cli("--json", "backup", "verify", backup_id)
    assert result.exit_code == 1
    error = result.json()["error"]
    assert error["code"] == "backup_corrupt" and error["details"]["file"] == f"{source}-flat.vmdk"
    assert bed.run("backup", "list", "--vm", source)[0]["status"] == "failed"
    human = bed.cli("backup", "list", "--vm", source)  # tab-separated when not on a terminal
    assert human.exit_code == 0 and human.stdout.splitlines()[0].startswith("ID\tVM\tTARGET\tSTATUS")
    assert f"{backup_id[:8]}\t{source}\t{bed.target}\tfailed\tcold" in human.stdout
    targets = bed.cli("target", "list")
    assert f"{bed.target}\tlocal\t{bed.store}" in targets.stdout


def test_unsupported_disks_are_refused_with_the_reason(backup_bed: BackupBed) -> None:
    from tests.support.vms import vim

    bed = backup_bed
    source = bed.make_vm(b"x" * 4096)
    vm = vm_by_name(bed.si, source)
    (disk,) = devices_of(vm, "VirtualDisk")
    disk.backing.diskMode = "independent_persistent"
    spec = vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)])
    assert vm.ReconfigVM_Task(spec=spec).info.state == "success"
    result = bed.cli("--json", "backup", "create", source, "--target", bed.target, "--timeout", "120")
    assert result.exit_code != 0
    job = result.json()
    assert job["state"] == "failed" and job["error"]["code"] == "backup_unsupported"
    assert "independent" in job["error"]["message"]
    assert bed.run("backup", "list", "--vm", source) == []


def test_restore_in_place_over_the_powered_off_original(backup_bed: BackupBed) -> None:
    bed = backup_bed
    data = payload(1 << 20)
    source = bed.make_vm(data)
    uuid = vm_by_name(bed.si, source).config.uuid
    backup_id = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")["result"][
        "backup_id"
    ]
    bed.flat(source).write_bytes(b"ruined" * 1000)
    refused = bed.cli("--json", "backup", "restore", backup_id, "--in-place", "--as", "other")
    assert refused.exit_code == 2
    unconfirmed = bed.cli("--json", "backup", "restore", backup_id, "--in-place")
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.json()["error"]["message"]
    job = bed.run("backup", "restore", backup_id, "--in-place", "--yes", "--no-power-on", "--timeout", "120")
    assert job["state"] == "succeeded", job
    assert bed.flat(source).read_bytes() == data
    assert "CopyVirtualDisk_Task" in job["result"]["disks_written"]  # staged, then copied thin into place
    (replace,) = [s for s in job["steps"] if s["name"] == "replace disk 1/1 thin"]
    assert [c["method"] for c in replace["calls"]] == [
        "VirtualDiskManager.DeleteVirtualDisk_Task",
        "VirtualDiskManager.CopyVirtualDisk_Task",
    ]
    assert not (bed.datastore_dir / source / "ceso-restore-staging").exists()
    vm = vm_by_name(bed.si, source)
    assert vm.config.uuid == uuid and vm.runtime.powerState == "poweredOff"

    assert vm.PowerOnVM_Task().info.state == "success"
    running = bed.cli("--json", "backup", "restore", backup_id, "--in-place", "--yes", "--timeout", "120")
    assert running.exit_code == 5 and "power it off" in running.json()["error"]["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the catalog runs on both above
def test_a_restore_as_a_new_vm_carries_the_sources_hardware(backup_bed: BackupBed) -> None:
    """The clone hardware scenario (tests/vm/test_fake_backend_fidelity.py): backed up, restored --as."""
    from tests.vm.test_fake_backend_fidelity import EXPECTED, ISO, api_hardware_source, api_props, hardware

    bed = backup_bed
    (bed.datastore_dir / "iso").mkdir(exist_ok=True)
    (bed.datastore_dir / "iso" / ISO.rsplit("/", 1)[1]).write_bytes(b"\0" * 4096)
    source = unique("hwsrc")
    api_hardware_source(make_template(bed.si, bed.datastore_dir, source, payload(1 << 20), cpus=4), source)
    backup_id = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")["result"][
        "backup_id"
    ]
    recorded = json.loads((bed.store / source / backup_id / "manifest.json").read_text())["vm_config"]
    assert recorded["carried"]["extra_config"] == {"disk.EnableUUID": "TRUE"}
    assert recorded["carried"]["nic_pci_slots"] == [192]

    name = unique("restored")
    job = bed.run("backup", "restore", backup_id, "--as", name, "--no-power-on", "--timeout", "120")
    assert job["state"] == "succeeded", job
    vm = vm_by_name(bed.si, name)
    assert hardware(api_props(vm), source) == EXPECTED  # read by pyVmomi: CD-ROMs and serial ports off
    original = vm_by_name(bed.si, source)
    assert vm.config.uuid != original.config.uuid
    (nic,), (onic,) = devices_of(vm, "VirtualEthernetCard"), devices_of(original, "VirtualEthernetCard")
    assert nic.macAddress != onic.macAddress
