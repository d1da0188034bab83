"""The datastore fills up while a job writes to it: the simulator's datastore is a small tmpfs, and
the test fills it (a file taking all but 128 KiB) once a ``vm create`` starts copying its disk and
once a ``backup restore --as`` starts writing the backed-up files.

Each job fails with one clear error naming the step that ran out of space; nothing half-made is
left (no VM, no directory, the datastore's listing as before) and, once the filler is removed,
the datastore's free space is what it was before the job, read with statvfs on the tmpfs.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.chaos import TERMINAL, assert_record_matches_host, job_rows, wait_terminal
from tests.support.simulator import SimulatorHost
from tests.support.vms import make_template, vm_names

#: Disk copies and file writes slowed so the datastore fills while they run.
DELAYS = "CopyVirtualDisk_Task=1500,MakeDirectory=500"

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass
class Bed:
    cli: Cli
    url: str
    host: str
    sim: SimulatorHost
    si: Any
    datastore: Path
    template: str
    store: Path
    target: str


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize


@pytest.fixture
def full_bed(
    cli: Cli, ceso_env: dict[str, str], sim_factory: Any, start_worker: Any, tmp_path: Path
) -> Iterator[Bed]:
    sim: SimulatorHost = sim_factory(extra_args=("-delay", DELAYS))
    ds = sim.datastore_dir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(ds)], check=True)
    try:
        host = unique("full")
        added = cli("host", "add", host, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
        assert added.exit_code == 0, added.stdout + added.stderr
        si = sim.connect()
        template = unique("tmpl")
        make_template(si, ds, template, os.urandom(1 << 20))
        assert cli("template", "add", template, "--host", host).exit_code == 0
        store = tmp_path / "store"
        store.mkdir()
        target = unique("local")
        assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
        start_worker(host)
        yield Bed(cli, ceso_env["CESO_DATABASE_URL"], host, sim, si, ds, template, store, target)
    finally:
        subprocess.run(["umount", "-l", str(ds)], check=False)


def _submit(bed: Bed, *args: str) -> str:
    result = bed.cli("--json", *args, "--no-wait")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["id"])


def _fill_at(bed: Bed, job_id: str, step: str, timeout: float = 60) -> Path:
    """Once job ``job_id`` records ``step``, fill the datastore to 128 KiB of free space."""
    deadline = time.monotonic() + timeout
    while not any(
        str(s["name"]).startswith(step) for s in job_rows(bed.url, [job_id])[job_id]["steps"] or []
    ):
        row = job_rows(bed.url, [job_id])[job_id]
        assert row["state"] not in TERMINAL, f"{job_id} ended before {step!r}: {row}"
        assert time.monotonic() < deadline, f"{job_id}: {step!r} never started"
        time.sleep(0.02)
    filler = bed.datastore / "filler.bin"
    with filler.open("wb") as out:
        os.posix_fallocate(out.fileno(), 0, _free(bed.datastore) - (128 << 10))
    return filler


def _failed_clean(
    bed: Bed, job_id: str, name: str, before: tuple[list[str], int], filler: Path
) -> dict[str, Any]:
    rows = wait_terminal(bed.url, [job_id], timeout=120)
    filler.unlink()
    row = rows[job_id]
    status = bed.cli("--json", "job", "status", job_id).json()
    assert row["state"] == "failed", status
    assert_record_matches_host(bed.si, bed.datastore, rows, {job_id: name})
    assert name not in vm_names(bed.si)
    assert sorted(os.listdir(bed.datastore)) == before[0]
    assert _free(bed.datastore) == before[1], "the datastore's free space is not back"
    failed = [s for s in status["steps"] if s["state"] == "failed"]
    cleanup = [s for s in status["steps"] if s.get("cleanup") and s["name"] == "clean up after failure"]
    assert all(s["state"] == "succeeded" for s in cleanup), cleanup
    return {"error": status["error"], "step": failed[0]["name"] if failed else None}


def test_the_datastore_fills_during_a_create_and_a_restore(full_bed: Bed) -> None:
    bed = full_bed
    seen = {}
    # A restore's point, taken first (the template is off: a cold backup, read in place).
    backup = bed.cli("--json", "backup", "create", bed.template, "--target", bed.target, "--timeout", "120")
    assert backup.exit_code == 0, backup.stdout + backup.stderr
    point = backup.json()["result"]["backup_id"]

    before = (sorted(os.listdir(bed.datastore)), _free(bed.datastore))
    name = unique("fullvm")
    job_id = _submit(bed, "vm", "create", name, "--template", bed.template)
    seen["create"] = _failed_clean(bed, job_id, name, before, _fill_at(bed, job_id, "copy disk"))

    name = unique("fullrs")
    job_id = _submit(bed, "backup", "restore", point, "--as", name)
    seen["restore"] = _failed_clean(bed, job_id, name, before, _fill_at(bed, job_id, "make directory"))
    for what in seen.values():
        assert what["error"]["code"] in ("datastore_full", "datastore_error", "insufficient_space"), what
        assert "\n" not in what["error"]["message"], what  # one line
        assert "datastore" in what["error"]["message"] and "full" in what["error"]["message"], what
    print(
        "\nMATRIX | datastore full (a 6 MiB tmpfs filled mid-job) | runs 2 | jobs lost 0 | records disagreeing 0 | "
        "duplicate VMs 0 | orphans 0 | "
        + "; ".join(f"{k}: failed {v['error']['code']} at {v['step']!r}" for k, v in seen.items())
        + "; free space back to the byte"
    )
    for kind, what in seen.items():
        print(f"  {kind}: {what['error']['message']}")
