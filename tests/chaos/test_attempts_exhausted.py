"""Workers SIGKILLed mid-job, again and again: the job's last delivery cleans up what its attempts
left, and a cold backup's VM is powered back on by whichever delivery comes after the shutdown.

Each kill takes the whole worker (its process group) at a named moment, read from the job's row;
a new worker's recovery republishes the job once its heartbeat is stale. What is left is read
independently: the simulator with pyVmomi and its datastore directory, the backup target's
directory, and the catalog through ``backup list``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, Worker, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import make_template, read_property, snapshot_names, vm_by_name, vm_names

DELAY_MS = 700
SLOW_METHODS = ("MakeDirectory", "CopyVirtualDisk_Task", "CreateVM_Task", "CreateSnapshot_Task")
WORKER_ENV = {"CESO_JOBS__HEARTBEAT_S": "0.5", "CESO_JOBS__STALE_AFTER_S": "3"}
PHASE_TIMEOUT_S = 60.0

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Bed:
    cli: Cli
    host: str
    si: Any
    datastore_dir: Path
    store: Path
    target: str
    start: Callable[[], Worker]
    workers: list[Worker] = field(default_factory=list)

    def status(self, job_id: str) -> dict[str, Any]:
        out = self.cli("--json", "job", "status", job_id)
        assert out.exit_code == 0, out.stdout + out.stderr
        return out.json()  # type: ignore[no-any-return]

    def kill_at(self, job_id: str, attempt: int, moment: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Wait until attempt ``attempt`` of the job reaches ``moment``, then SIGKILL the worker and
        start another; return the job as it was at the kill."""
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while not ((job := self.status(job_id))["attempts"] == attempt and moment(job)):
            assert job["state"] in ("queued", "running"), f"ended before the kill of attempt {attempt}: {job}"
            assert time.monotonic() < deadline, f"attempt {attempt} never reached the moment: {job}"
            time.sleep(0.05)
        self.workers[-1].kill()
        self.workers.append(self.start())
        return job

    def wait(self, job_id: str) -> dict[str, Any]:
        out = self.cli("--json", "job", "wait", job_id, "--timeout", str(PHASE_TIMEOUT_S * 2))
        return out.json()  # type: ignore[no-any-return]

    def files(self, root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def bed(cli: Cli, sim_factory: Any, start_worker: Any, tmp_path: Path) -> Iterator[Bed]:
    delays = ",".join(f"{m}={DELAY_MS}" for m in SLOW_METHODS)
    sim: SimulatorHost = sim_factory(extra_args=("-delay", delays))
    host = unique("kill")
    added = cli("host", "add", host, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stderr
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    bed = Bed(
        cli,
        host,
        sim.connect(),
        sim.datastore_dir(),
        store,
        target,
        lambda: start_worker(host, env=WORKER_ENV),
    )
    bed.workers.append(bed.start())
    yield bed


def at_step(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda job: job["current_step"] == name


def copying_disk(job: dict[str, Any]) -> bool:
    return (job["current_step"] or "").endswith("-flat.vmdk") and job["progress"] > 12


def power_state(bed: Bed, vm: str) -> str:
    return str(read_property(bed.si, vm_by_name(bed.si, vm), "runtime.powerState"))


def test_create_killed_three_times_leaves_nothing(bed: Bed) -> None:
    template = unique("tmpl")
    make_template(bed.si, bed.datastore_dir, template, os.urandom(256 << 10))
    assert bed.cli("template", "add", template, "--host", bed.host).exit_code == 0
    before = (vm_names(bed.si), bed.files(bed.datastore_dir))
    name = unique("new")
    job_id = bed.cli(
        "--json", "vm", "create", name, "--template", template, "--host", bed.host, "--no-wait"
    ).json()["id"]
    for attempt in (1, 2, 3):
        bed.kill_at(job_id, attempt, at_step("create VM"))  # its directory and copied disk are there
    assert (bed.datastore_dir / name).exists()  # what the third attempt left, for now
    job = bed.wait(job_id)
    assert (job["state"], job["error"]["code"]) == ("failed", "attempts_exhausted"), job
    assert (vm_names(bed.si), bed.files(bed.datastore_dir)) == before
    cleanup = [s for s in job["steps"] if s["name"] == "remove leftovers"]
    assert [s["state"] for s in cleanup] == ["succeeded"], job["steps"]


def test_hot_backup_killed_three_times_leaves_no_snapshot_files_or_pending_set(bed: Bed) -> None:
    vm = unique("src")
    make_template(bed.si, bed.datastore_dir, vm, os.urandom(24 << 20)).PowerOnVM_Task()
    args = ["--json", "backup", "create", vm, "--target", bed.target, "--compress", "gzip", "--level", "9"]
    job_id = bed.cli(*args, "--no-wait").json()["id"]
    for attempt in (1, 2, 3):
        bed.kill_at(job_id, attempt, copying_disk)
    assert snapshot_names(bed.si, vm_by_name(bed.si, vm)) != []  # the third attempt's, for now
    assert any(p.endswith(".partial") for p in bed.files(bed.store))
    job = bed.wait(job_id)
    assert (job["state"], job["error"]["code"]) == ("failed", "attempts_exhausted"), job
    assert snapshot_names(bed.si, vm_by_name(bed.si, vm)) == []
    assert [p for p in bed.files(bed.store) if (bed.store / p).is_file()] == []
    sets = bed.cli("--json", "backup", "list", "--vm", vm).json()
    assert [s["status"] for s in sets] == ["failed"]
    assert power_state(bed, vm) == "poweredOn"
    cleanup = {s["name"]: s["state"] for s in job["steps"] if s.get("cleanup")}
    assert cleanup["discard backup set"] == cleanup["restore VM"] == "succeeded", job["steps"]


@pytest.mark.parametrize("kills", [1, 3])
def test_cold_backup_killed_after_the_shutdown_powers_the_vm_back_on(bed: Bed, kills: int) -> None:
    vm = unique("src")
    make_template(bed.si, bed.datastore_dir, vm, os.urandom(24 << 20)).PowerOnVM_Task()
    args = [
        "--json",
        "backup",
        "create",
        vm,
        "--target",
        bed.target,
        "--cold",
        "--compress",
        "gzip",
        "--level",
        "9",
    ]
    job_id = bed.cli(*args, "--no-wait").json()["id"]
    for attempt in range(1, kills + 1):
        bed.kill_at(job_id, attempt, copying_disk)
    assert power_state(bed, vm) == "poweredOff"  # shut down by the killed attempt
    job = bed.wait(job_id)
    if kills == 1:
        assert job["state"] == "succeeded", job
        assert [s["status"] for s in bed.cli("--json", "backup", "list", "--vm", vm).json()] == ["completed"]
    else:
        assert (job["state"], job["error"]["code"]) == ("failed", "attempts_exhausted"), job
    assert power_state(bed, vm) == "poweredOn"
