"""Restore drills end to end: real worker, Redis, SQL, the simulator (whose guests boot only from a
disk with a boot signature, see ops/simulator/main.go); what is left is read back with pyVmomi and
from the datastore's directory."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from tests.backup.bed import BackupBed, payload
from tests.metrics.test_worker_metrics import scrape, value
from tests.support.vms import devices_of, vm_by_name, vm_names


def bootable(size: int = 1 << 20) -> bytes:
    """A disk whose first sector ends in the boot signature a BIOS looks for (0x55 0xAA)."""
    sector = bytearray(512)
    sector[510:512] = b"\x55\xaa"
    return bytes(sector) + payload(size)[512:]


def backed_up(bed: BackupBed, data: bytes) -> tuple[str, str]:
    source = bed.make_vm(data)
    job = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")
    assert job["state"] == "succeeded", job
    return source, job["result"]["backup_id"]


def leftovers(bed: BackupBed) -> list[str]:
    """Drill VMs the host still has, and their directories on the datastore."""
    vms = [n for n in vm_names(bed.si) if n.startswith("ceso-drill-")]
    dirs = [p.name for p in bed.datastore_dir.iterdir() if p.name.startswith("ceso-drill-")]
    return vms + dirs


def last_drill(bed: BackupBed, source: str, backup_id: str) -> Any:
    (entry,) = [b for b in bed.run("backup", "list", "--vm", source) if b["id"] == backup_id]
    return entry["last_drill"]


def test_a_bootable_backup_passes_its_drill_and_leaves_nothing(backup_bed: BackupBed) -> None:
    bed = backup_bed
    data = bootable()
    source, backup_id = backed_up(bed, data)
    plan = bed.run("--dry-run", "backup", "drill", backup_id[:8])["plan"]
    assert any(line.startswith("wait for heartbeat") for line in plan)
    assert any(line.startswith("remove drill VM (always") for line in plan)
    assert not any(line.startswith("check network") for line in plan)  # only with --network
    job = bed.run("backup", "drill", backup_id[:8], "--boot-timeout", "30", "--timeout", "120")
    assert job["state"] == "succeeded", job
    drill = job["result"]["drill"]
    assert drill["status"] == "passed" and drill["reason"] is None and drill["backup_id"] == backup_id
    assert drill["job_id"] == job["id"] and drill["restore_s"] > 0 and drill["boot_s"] >= 0
    assert drill["guest_ip"] is None  # no NIC was connected
    assert job["result"]["name"] == f"ceso-drill-{source}-{job['id'][:8]}"
    assert leftovers(bed) == []
    # The source is untouched: still off, same bytes.
    assert vm_by_name(bed.si, source).runtime.powerState == "poweredOff"
    assert bed.flat(source).read_bytes() == data
    assert last_drill(bed, source, backup_id) == drill
    human = bed.cli("backup", "list", "--vm", source)
    assert human.stdout.splitlines()[0].endswith("\tDRILL") and "\tpassed 20" in human.stdout

    # --vm drills the VM's newest point; --network connects the first NIC, which gets an address.
    job = bed.run("backup", "drill", "--vm", source, "--network", "VM Network", "--boot-timeout", "30")
    assert job["state"] == "succeeded", job
    assert job["result"]["drill"]["guest_ip"].startswith("198.51.100.")
    assert leftovers(bed) == []

    # An unknown port group is refused before anything is made, and is no drill of the backup.
    refused = bed.cli("--json", "backup", "drill", backup_id, "--network", "no-such-pg", "--timeout", "60")
    assert refused.exit_code == 4, refused.stdout + refused.stderr
    assert "no-such-pg" in refused.json()["error"]["message"]
    assert last_drill(bed, source, backup_id)["job_id"] == job["id"]
    assert leftovers(bed) == []

    # The worker exports when the VM last passed a drill, and the drills by outcome.
    samples = scrape(bed.worker.metrics_url())
    passed_at = value(samples, "ceso_last_successful_drill_timestamp_seconds", vm=source, host=bed.host)
    assert abs(passed_at - datetime.fromisoformat(job["result"]["drill"]["finished_at"]).timestamp()) < 1
    assert value(samples, "ceso_backup_drills_total", host=bed.host, outcome="passed") == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same SQL as the test above
def test_a_drill_that_cannot_boot_fails_with_its_reason_and_leaves_nothing(backup_bed: BackupBed) -> None:
    bed = backup_bed
    source, backup_id = backed_up(bed, payload(1 << 20))  # no boot signature: the guest never starts
    result = bed.cli("--json", "backup", "drill", backup_id, "--boot-timeout", "2", "--timeout", "120")
    assert result.exit_code == 1, result.stdout + result.stderr
    error = result.json()["error"]
    assert error["code"] == "timeout" and "heartbeat within 2s" in error["message"]
    drill = last_drill(bed, source, backup_id)
    assert drill["status"] == "failed" and "heartbeat" in drill["reason"] and drill["boot_s"] is None
    assert leftovers(bed) == []

    # A damaged backup fails its drill too, naming the file, before any VM exists.
    source, backup_id = backed_up(bed, bootable())
    flat = next(p for p in (bed.store / source / backup_id).iterdir() if "-flat" in p.name)
    damaged = bytearray(flat.read_bytes())
    damaged[len(damaged) // 2] ^= 0x40
    flat.write_bytes(bytes(damaged))
    result = bed.cli("--json", "backup", "drill", backup_id, "--boot-timeout", "30", "--timeout", "120")
    assert result.exit_code == 1, result.stdout + result.stderr
    drill = last_drill(bed, source, backup_id)
    assert drill["status"] == "failed" and f"{source}-flat.vmdk" in drill["reason"], drill
    assert leftovers(bed) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_drill_cancelled_while_it_waits_for_the_guest_leaves_nothing(backup_bed: BackupBed) -> None:
    bed = backup_bed
    source, backup_id = backed_up(bed, payload(1 << 20))  # never boots: the drill waits
    job_id = bed.run("backup", "drill", backup_id, "--boot-timeout", "300", "--no-wait")["id"]
    deadline = time.monotonic() + 60
    while bed.run("job", "status", job_id)["current_step"] != "wait for heartbeat":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # Meanwhile the throwaway VM is on, and none of its NICs is (or will be) connected.
    vm = vm_by_name(bed.si, f"ceso-drill-{source}-{job_id[:8]}")
    assert vm.runtime.powerState == "poweredOn"
    nics = devices_of(vm, "VirtualEthernetCard")
    assert nics and not any(n.connectable.startConnected or n.connectable.connected for n in nics)
    bed.run("job", "cancel", job_id)
    deadline = time.monotonic() + 60
    while (job := bed.run("job", "status", job_id))["state"] not in ("cancelled", "failed", "succeeded"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == "cancelled", job
    assert [s["name"] for s in job["steps"]][-1] == "remove drill VM"
    assert leftovers(bed) == []
    assert last_drill(bed, source, backup_id) is None  # a cancelled drill says nothing of the backup
