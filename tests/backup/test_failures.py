"""Failures in the middle of a backup: a full target and a killed worker. Nothing half-done is
catalogued as completed, no temporary snapshot outlives its job, and a retry completes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.backup.bed import BackupBed
from tests.support.vms import vm_by_name


def snapshot_names(bed: BackupBed, vm: str) -> list[str]:
    """Through the property collector: reading an unset ``vm.snapshot`` breaks the simulator's request."""
    from tests.support.vms import vim, vmodl

    pc = bed.si.RetrieveContent().propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=vm_by_name(bed.si, vm))],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["snapshot"])],
    )
    props = pc.RetrieveContents([spec])[0].propSet or []
    snap = props[0].val if props else None
    out: list[str] = []
    stack = list(snap.rootSnapshotList) if snap else []
    while stack:
        tree = stack.pop()
        out.append(tree.name)
        stack.extend(tree.childSnapshotList or [])
    return out


def test_full_target_leaves_no_completed_entry_and_no_snapshot(backup_bed: BackupBed, tmp_path: Path) -> None:
    bed = backup_bed
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tiny)], check=True)
    try:
        target = "tiny-" + os.urandom(3).hex()
        bed.run("target", "add", target, "--type", "local", "--path", str(tiny))
        source = bed.make_vm(os.urandom(3 << 20), power_on=True)
        result = bed.cli("--json", "backup", "create", source, "--target", target, "--timeout", "120")
        assert result.exit_code == 1, result.stdout
        job = result.json()
        assert job["state"] == "failed" and job["error"]["code"] == "target_full", job["error"]
        assert "remove snapshot" in [s["name"] for s in job["steps"]]
        assert snapshot_names(bed, source) == []
        (entry,) = bed.run("backup", "list", "--vm", source)
        assert entry["status"] == "failed"
        assert list(tiny.rglob("*")) == []  # partial files and directories removed

        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny)], check=True)
        retry = bed.run("backup", "create", source, "--target", target, "--timeout", "120")
        assert retry["state"] == "succeeded", retry
        statuses = sorted(b["status"] for b in bed.run("backup", "list", "--vm", source))
        assert statuses == ["completed", "failed"]
        assert snapshot_names(bed, source) == []
    finally:
        subprocess.run(["umount", "-l", str(tiny)], check=False)


def test_killed_worker_is_recovered_and_its_snapshot_removed(
    backup_bed: BackupBed, start_worker: object
) -> None:
    bed = backup_bed
    source = bed.make_vm(os.urandom(96 << 20), power_on=True)
    submitted = bed.run(
        "backup", "create", source, "--target", bed.target, "--compress", "gzip", "--level", "9", "--no-wait"
    )
    job_id = submitted["id"]
    deadline = time.monotonic() + 60
    while True:
        job = bed.run("job", "status", job_id)
        if (job["current_step"] or "").endswith("-flat.vmdk") and job["progress"] > 12:
            break
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.2)
    bed.worker.kill()
    assert any(n.startswith("ceso-backup-") for n in snapshot_names(bed, source))  # the orphan, for now
    assert [b["status"] for b in bed.run("backup", "list", "--vm", source)] == ["pending"]

    start_worker(bed.host, concurrency=1)  # its recovery republishes the job once its heartbeat is stale
    job = bed.run("job", "wait", job_id, "--timeout", "180")
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2
    assert "remove leftover snapshot" in [s["name"] for s in job["steps"]]
    assert snapshot_names(bed, source) == []
    assert [b["status"] for b in bed.run("backup", "list", "--vm", source)] == ["completed"]
    assert bed.run("backup", "verify", job_id)["status"] == "verified"


def test_cancel_mid_copy_removes_the_snapshot(backup_bed: BackupBed) -> None:
    bed = backup_bed
    source = bed.make_vm(os.urandom(64 << 20), power_on=True)
    job_id = bed.run(
        "backup", "create", source, "--target", bed.target, "--compress", "gzip", "--level", "9", "--no-wait"
    )["id"]
    deadline = time.monotonic() + 60
    while not (bed.run("job", "status", job_id)["current_step"] or "").endswith("-flat.vmdk"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    bed.run("job", "cancel", job_id)
    deadline = time.monotonic() + 60
    while (job := bed.run("job", "status", job_id))["state"] not in ("cancelled", "failed", "succeeded"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == "cancelled", job
    assert snapshot_names(bed, source) == []
    assert [b["status"] for b in bed.run("backup", "list", "--vm", source)] == ["failed"]
    assert not (bed.store / source).exists() or not any((bed.store / source).rglob("*"))


def test_an_attempt_killed_after_cataloguing_its_set_is_adopted(backup_bed: BackupBed) -> None:
    """The worker dies between committing the set ``completed`` and recording the job's outcome:
    SQL holds the job running on "catalog completed" with a stale heartbeat. The next delivery
    adopts the set (the job succeeds with its id) and the set and its files stay, whole."""
    from datetime import timedelta

    from sqlmodel import Session

    from ceso.db.models import Job
    from ceso.jobs.runner import Delivery, run_job
    from ceso.runtime import get_runtime

    bed = backup_bed
    source = bed.make_vm(os.urandom(1 << 20), power_on=True)
    first = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")
    assert first["state"] == "succeeded", first
    point = bed.store / source / first["id"]
    files = {p.name: p.read_bytes() for p in point.iterdir()}
    runtime = get_runtime()
    with Session(runtime.engine) as session:
        job = session.get(Job, first["id"])
        assert job is not None and job.heartbeat_at is not None
        assert job.steps[-1]["name"] == "catalog completed"
        job.state, job.result, job.finished_at = "running", None, None
        job.heartbeat_at -= timedelta(hours=1)
        job.steps = [*job.steps[:-1], {**job.steps[-1], "state": "running"}]
        session.add(job)
        session.commit()
    assert run_job(runtime, first["id"]) == Delivery.DONE
    job = bed.run("job", "status", first["id"])
    assert (job["state"], job["attempts"]) == ("succeeded", 2), job
    assert job["result"]["backup_id"] == first["result"]["backup_id"] and job["result"]["adopted"] is True
    assert job["result"]["manifest_sha256"] == first["result"]["manifest_sha256"]
    assert [b["status"] for b in bed.run("backup", "list", "--vm", source)] == ["completed"]
    assert {p.name: p.read_bytes() for p in point.iterdir()} == files
    assert snapshot_names(bed, source) == []
    assert bed.run("backup", "verify", first["id"])["status"] == "verified"
