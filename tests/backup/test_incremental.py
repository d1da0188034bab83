"""Backups that cost what changed: allocation-aware fulls and CBT incrementals, end to end.

Known blocks are written into a thin disk's ``-flat.vmdk`` on the simulator's datastore between
backups (where a guest's writes land); the test keeps a copy of the disk at each point, restores
every point as a new VM and compares the restored file byte for byte. What was stored is read
from the target directory and the manifests, not from ceso's output.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backup.bed import BackupBed
from tests.backup.test_failures import snapshot_names
from tests.conftest import unique
from tests.support.vms import read_property, vim
from tests.support.vms import vm_by_name as _vm_by_name

MiB = 1 << 20
KiB = 1 << 10


def vm_by_name(si: Any, name: str) -> Any:
    vm = _vm_by_name(si, name)
    assert vm is not None, name
    return vm


def _write(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _backup(bed: BackupBed, vm: str, *extra: str) -> dict[str, Any]:
    job = bed.run("backup", "create", vm, "--target", bed.target, "--incremental", "--timeout", "180", *extra)
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def _manifest(bed: BackupBed, vm: str, backup_id: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((bed.store / vm / backup_id / "manifest.json").read_bytes())
    return body


def _flat_entry(manifest: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [f for f in manifest["files"] if f["role"] == "extent"]
    found: dict[str, Any] = entry
    return found


def _snapshot(bed: BackupBed, handle: Any, name: str) -> Any:
    task = handle.CreateSnapshot_Task(name=name, description="", memory=False, quiesce=False)
    assert task.info.state == "success"
    return task.info.result


def _remove(bed: BackupBed, snapshot: Any) -> None:
    # One snapshot at a time: the simulator's RemoveAllSnapshots can delete the base disk.
    # Its snapshot tasks have a snapshot as entity, which pyVmomi cannot read as task.info.
    task = snapshot.RemoveSnapshot_Task(removeChildren=False)
    assert read_property(bed.si, task, "info.state") == "success"


def _restore(bed: BackupBed, backup_id: str) -> str:
    name = unique("point")
    job = bed.run("backup", "restore", backup_id, "--as", name, "--no-power-on", "--timeout", "180")
    assert job["state"] == "succeeded", job
    return name


def test_full_and_incrementals_restore_every_point(backup_bed: BackupBed) -> None:
    bed = backup_bed
    vm = bed.make_vm(b"", power_on=True)
    flat = bed.flat(vm)
    flat.unlink()  # a fresh thin disk: all holes
    _write(flat, 0, os.urandom(MiB))
    _write(flat, 8 * MiB, os.urandom(512 * KiB))
    copies = [flat.read_bytes()]

    full = _backup(bed, vm)
    assert full["scope"] == "full" and full["chain_length"] == 1
    assert full["fallback"] == "no earlier backup of the VM at this target"
    entry = _flat_entry(_manifest(bed, vm, full["backup_id"]))
    # Only the allocated areas were read and stored: 1.5 MiB of an 8.5 MiB file.
    assert entry["extents"] == [[0, MiB], [8 * MiB, 512 * KiB]]
    assert entry["disk_bytes"] == len(copies[0]) and entry["logical_bytes"] == MiB + 512 * KiB
    assert vm_by_name(bed.si, vm).config.changeTrackingEnabled is True  # switched on for the backup

    # A hole filled, a few bytes rewritten in place, and the file grown.
    _write(flat, 4 * MiB, os.urandom(64 * KiB))
    _write(flat, 8 * MiB + 10, b"changed")
    _write(flat, 12 * MiB, os.urandom(100 * KiB))
    copies.append(flat.read_bytes())
    inc1 = _backup(bed, vm, "--encrypt")  # a chain may mix encrypted and plain points
    assert inc1["scope"] == "incremental" and inc1["parent_id"] == full["backup_id"]
    assert inc1["chain_length"] == 2 and "fallback" not in inc1
    entry = _flat_entry(_manifest(bed, vm, inc1["backup_id"]))
    assert entry["extents"] == [[4 * MiB, 64 * KiB], [8 * MiB, 64 * KiB], [12 * MiB, 100 * KiB]]

    _write(flat, 100 * KiB, b"\0" * KiB)  # zeros over data are a change too
    copies.append(flat.read_bytes())
    inc2 = _backup(bed, vm)
    assert inc2["parent_id"] == inc1["backup_id"] and inc2["chain_length"] == 3
    assert _flat_entry(_manifest(bed, vm, inc2["backup_id"]))["extents"] == [[64 * KiB, 64 * KiB]]

    listed = {b["id"]: b for b in bed.run("backup", "list", "--vm", vm)}
    assert [listed[p["backup_id"]]["scope"] for p in (full, inc1, inc2)] == [
        "full",
        "incremental",
        "incremental",
    ]
    assert listed[inc2["backup_id"]]["parent_id"] == inc1["backup_id"]
    assert listed[inc2["backup_id"]]["chain_length"] == 3

    for point, expected in zip((full, inc1, inc2), copies, strict=True):
        name = _restore(bed, point["backup_id"])
        assert (bed.datastore_dir / name / f"{vm}-flat.vmdk").read_bytes() == expected, point["backup_id"]

    # verify checks the whole chain; a damaged full breaks every point built on it.
    assert bed.run("backup", "verify", inc2["backup_id"])["status"] == "verified"
    statuses = {b["id"]: b["status"] for b in bed.run("backup", "list", "--vm", vm)}
    assert {statuses[p["backup_id"]] for p in (full, inc1, inc2)} == {"verified"}
    refused = bed.cli("--json", "backup", "delete", full["backup_id"])
    assert refused.exit_code != 0 and "parent of backup" in refused.stdout + refused.stderr
    stored_full = bed.store / vm / full["backup_id"]
    damaged = next(p for p in stored_full.iterdir() if "-flat" in p.name)
    body = damaged.read_bytes()
    damaged.write_bytes(body[:-1] + bytes([body[-1] ^ 0xFF]))
    broken = bed.cli("--json", "backup", "verify", inc2["backup_id"])
    assert broken.exit_code == 1
    assert full["backup_id"] in broken.stdout + broken.stderr
    statuses = {b["id"]: b["status"] for b in bed.run("backup", "list", "--vm", vm)}
    assert statuses[full["backup_id"]] == "failed" and statuses[inc2["backup_id"]] == "failed"
    # The next incremental does not build on a broken chain.
    again = _backup(bed, vm)
    assert again["scope"] == "full" and "failed" in again["fallback"]


@pytest.mark.parametrize(
    "database_url", ["sqlite"], indirect=True
)  # catalog paths run on both in the test above
def test_untrusted_chains_fall_back_to_a_full(backup_bed: BackupBed) -> None:
    bed = backup_bed
    vm = bed.make_vm(os.urandom(MiB), power_on=True)
    handle = vm_by_name(bed.si, vm)
    first = _backup(bed, vm)
    assert first["scope"] == "full"

    # A revert resets CBT on the host: the parent's changeId is refused.
    users = _snapshot(bed, handle, "users")
    assert read_property(bed.si, users.RevertToSnapshot_Task(), "info.state") == "success"
    _remove(bed, users)
    reset = _backup(bed, vm)
    assert reset["scope"] == "full" and "refused changeId" in reset["fallback"], reset

    # full_every: a chain of at most N incrementals.
    one = _backup(bed, vm, "--full-every", "1")
    assert one["scope"] == "incremental"
    capped = _backup(bed, vm, "--full-every", "1")
    assert capped["scope"] == "full" and "full_every 1" in capped["fallback"]

    # A resized disk.
    (disk,) = [d for d in handle.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    disk.capacityInKB += 1024
    spec = vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)])
    assert handle.ReconfigVM_Task(spec=spec).info.state == "success"
    resized = _backup(bed, vm)
    assert resized["scope"] == "full" and "disks changed" in resized["fallback"]

    # User snapshots: the flat file is not the disk's content; read file by file. (Left in place:
    # removing a snapshot that had a child can delete the simulator's base disk.)
    _snapshot(bed, handle, "keep")
    with_snap = _backup(bed, vm)
    assert with_snap["scope"] == "full" and "snapshots of its own" in with_snap["fallback"]
    assert snapshot_names(bed, vm) == ["keep"]
    after = _backup(bed, vm)
    assert after["scope"] == "full" and "read without change tracking" in after["fallback"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the production database
def test_killed_worker_mid_incremental_chains_to_the_last_good_point(
    backup_bed: BackupBed, start_worker: Any
) -> None:
    bed = backup_bed
    vm = bed.make_vm(os.urandom(MiB), power_on=True)
    flat = bed.flat(vm)
    full = _backup(bed, vm)
    _write(flat, 2 * MiB, os.urandom(64 * MiB))  # enough changed bytes to kill the copy part-way
    expected = flat.read_bytes()
    job_id = bed.run(
        "backup",
        "create",
        vm,
        "--target",
        bed.target,
        "--incremental",
        "--compress",
        "gzip",
        "--level",
        "9",
        "--no-wait",
    )["id"]
    deadline = time.monotonic() + 120
    while True:
        job = bed.run("job", "status", job_id)
        if (job["current_step"] or "").endswith("-flat.vmdk") and job["progress"] > 12:
            break
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.2)
    bed.worker.kill()
    statuses = {b["id"]: b["status"] for b in bed.run("backup", "list", "--vm", vm)}
    assert statuses == {full["backup_id"]: "completed", job_id: "pending"}  # no completed point for it

    start_worker(bed.host, concurrency=1)  # recovery delivers the job again
    job = bed.run("job", "wait", job_id, "--timeout", "240")
    assert job["state"] == "succeeded" and job["attempts"] == 2, job
    assert job["result"]["scope"] == "incremental" and job["result"]["parent_id"] == full["backup_id"]
    assert snapshot_names(bed, vm) == []
    name = _restore(bed, job_id)
    assert (bed.datastore_dir / name / f"{vm}-flat.vmdk").read_bytes() == expected
