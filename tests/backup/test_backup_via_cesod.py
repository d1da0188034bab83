"""backup create and restore through a local cesod's operator socket, checked against the disk bytes."""

from __future__ import annotations

import json
from typing import Any

import yaml

from ceso.cloudinit import decode_guestinfo
from tests.backup.bed import BackupBed, payload
from tests.conftest import unique
from tests.support.vms import extra_config, vm_by_name


def _forwarded(daemon: Any) -> list[str]:
    if not daemon.access_log.exists():
        return []
    lines = [json.loads(line.split(" ", 2)[2]) for line in daemon.access_log.read_text().splitlines()]
    return [c["method"] for line in lines for c in line["calls"]]


def test_backup_and_restore_go_through_the_local_cesod(backup_bed: BackupBed, start_cesod: Any) -> None:
    bed = backup_bed
    daemon = start_cesod()
    data = payload()
    source = bed.make_vm(data)
    job = bed.run(
        "backup", "create", source, "--target", bed.target, "--compress", "gzip", "--timeout", "120"
    )
    assert job["state"] == "succeeded" and job["kind"] == "backup.create", job
    assert job["actor"].startswith("operator:")
    backup_id = job["result"]["backup_id"]
    assert (bed.store / source / backup_id / "manifest.json").is_file()

    name = unique("restored")
    restored = bed.run("backup", "restore", backup_id, "--as", name, "--ip", "192.0.2.51/24",
                       "--gateway", "192.0.2.1", "--no-power-on", "--timeout", "120")  # fmt: skip
    assert restored["state"] == "succeeded", restored
    assert (bed.datastore_dir / name / f"{source}-flat.vmdk").read_bytes() == data
    meta = yaml.safe_load(decode_guestinfo(extra_config(vm_by_name(bed.si, name)))["metadata"])
    assert meta["network"]["ethernets"]["nic0"]["addresses"] == ["192.0.2.51/24"]
    assert _forwarded(daemon) == ["backup.create", "backup.restore"]

    # --in-place asks its confirmation in the CLI's process: it is not handed to cesod.
    (bed.datastore_dir / source / f"{source}-flat.vmdk").write_bytes(b"\0" * len(data))
    in_place = bed.run("backup", "restore", backup_id, "--in-place", "--yes", "--timeout", "120")
    assert in_place["state"] == "succeeded", in_place
    assert (bed.datastore_dir / source / f"{source}-flat.vmdk").read_bytes() == data
    assert _forwarded(daemon) == ["backup.create", "backup.restore"]
