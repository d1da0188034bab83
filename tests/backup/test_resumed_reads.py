"""A backup whose reads from the host are cut mid-copy (the API route: ``/folder`` over HTTP).

The host is reached through a FaultProxy that resets every connection once a few MiB of the disk
have gone through, and refuses new ones for a while. A cut shorter than ``jobs.host_retry_s``: the
read resumes from the byte it reached (a Range request), the step records its tries, the point is
byte for byte the source disk (restored as a new VM, compared on the datastore), no snapshot is
left. A cut longer than the window: the job fails ``host_unreachable``, the point is ``failed``
in the catalog with nothing at the target, and the snapshot is removed once the host is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.backup.bed import payload
from tests.conftest import Cli, unique
from tests.support.proxy import FaultProxy
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template, snapshot_names, vm_by_name, vm_names

MIB = 1 << 20
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class CutBed:
    cli: Cli
    host: str
    si: Any
    datastore_dir: Path
    proxy: FaultProxy
    store: Path
    target: str

    def run(self, *args: str) -> Any:
        result = self.cli("--json", *args)
        assert result.exit_code == 0, result.stdout + result.stderr
        return result.json()


@pytest.fixture
def cut_bed(cli: Cli, sim: SimulatorHost, tmp_path: Path) -> Iterator[CutBed]:
    proxy = FaultProxy((sim.host, sim.port))
    host = unique("cut")
    added = cli("host", "add", host, "--url", f"http://127.0.0.1:{proxy.port}/sdk", "--user", "root",
                "--password-stdin", input="pw\n")  # fmt: skip
    assert added.exit_code == 0, added.stdout + added.stderr
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    si = sim.connect()
    before = set(vm_names(si))
    yield CutBed(cli, host, si, sim.datastore_dir(), proxy, store, target)
    proxy.close()
    for vm in set(vm_names(si)) - before:
        destroy_vm(si, vm)


def _running_vm(bed: CutBed, data: bytes) -> str:
    name = unique("src")
    make_template(bed.si, bed.datastore_dir, name, data).PowerOnVM_Task()
    return name


def _retries(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The tries recorded while the disk's data file was copied (the cut comes in the middle of it)."""
    return [r for s in job["steps"] if s["name"].endswith("-flat.vmdk") for r in s.get("retries", [])]


@ONE_DATABASE
def test_a_cut_read_resumes_and_the_point_restores_to_the_source_bytes(
    cut_bed: CutBed, start_worker: Any
) -> None:
    bed = cut_bed
    start_worker(bed.host, env={"CESO_JOBS__HOST_RETRY_S": "30"})
    data = payload(16 * MIB)
    source = _running_vm(bed, data)
    # Half-way: bytes still in the sockets' buffers when the connection is reset are lost to the
    # reader, which then resumes from fewer bytes than the proxy passed (from 0 if the cut came early).
    bed.proxy.trip(8 * MIB, outage_s=2.5)
    job = bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")
    assert job["state"] == "succeeded", job
    assert bed.proxy.tripped.is_set()
    retries = _retries(job)
    # The cut, then refused tries while the host was away, each with its wait; resumed past byte 0.
    assert retries and all(r["code"] in ("connection_lost", "host_unreachable") for r in retries), retries
    assert all(r["wait_s"] is not None for r in retries) and max(r["at_byte"] for r in retries) > 0
    assert job["result"]["kind"] == "hot"
    assert snapshot_names(bed.si, vm_by_name(bed.si, source)) == []
    (entry,) = bed.run("backup", "list", "--vm", source)
    assert entry["status"] == "completed"

    name = unique("restored")
    restored = bed.run("backup", "restore", job["id"], "--as", name, "--no-power-on", "--timeout", "120")
    assert restored["state"] == "succeeded", restored
    assert (bed.datastore_dir / name / f"{source}-flat.vmdk").read_bytes() == data


@ONE_DATABASE
def test_a_cut_longer_than_the_window_fails_cleanly(cut_bed: CutBed, start_worker: Any) -> None:
    bed = cut_bed
    # A 2 s window; a worker's recovery retries the snapshot's removal every 3 s once the host is back.
    start_worker(bed.host, env={"CESO_JOBS__HOST_RETRY_S": "2", "CESO_JOBS__STALE_AFTER_S": "3"})
    source = _running_vm(bed, payload(12 * MIB))
    bed.proxy.trip(3 * MIB, outage_s=3.5)
    result = bed.cli("--json", "backup", "create", source, "--target", bed.target, "--timeout", "120")
    assert result.exit_code != 0, result.stdout
    job = result.json()
    assert job["state"] == "failed" and job["error"]["code"] == "host_unreachable", job["error"]
    retries = _retries(job)
    assert retries and retries[-1]["wait_s"] is None, retries
    (entry,) = bed.run("backup", "list", "--vm", source)
    assert entry["status"] == "failed"
    assert [p for p in bed.store.rglob("*") if p.is_file()] == []
    deadline = time.monotonic() + 45
    while snapshot_names(bed.si, vm_by_name(bed.si, source)):
        assert time.monotonic() < deadline, "the backup's snapshot outlived its job"
        time.sleep(0.5)
    assert os.listdir(bed.datastore_dir / source)  # the VM itself is untouched
