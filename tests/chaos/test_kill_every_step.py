"""A whole worker SIGKILLed at every host-changing step of ``vm create``, a hot ``vm clone``, a hot
``backup create`` and ``backup restore --as``, then started again.

The steps come from the declaration (ceso/plans.py): each kind's steps that apply to the job's
spec on the API route, run on its success path (an unfaulted run of the same job records them),
and whose declared calls change the host or the target (:func:`changes_something`). For each, the
test submits the job, kills the worker's process group (main process and prefork children) as soon
as the job records that step, starts a new worker and checks, on the host read with pyVmomi, the
datastore and target directories and the SQL rows (never through ceso):

- the job ends (none lost), and its record matches the host: a succeeded create, clone or restore
  has its VM exactly once, complete, with the result's UUID, MACs and power state; a succeeded
  backup has a completed set whose every file is at the target with its catalogued size; a failed
  job left no VM, no directory, no pending set and no file of its set at the target;
- no snapshot is left on the source of a hot clone or a backup;
- the restarted worker had the job running again within 10 s of being ready (fast reclaim).

Each kind prints its line of the fault matrix (docs/operations.md).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ceso.plans import API, Step, plan_of, steps_of
from tests.conftest import Cli, Worker, unique
from tests.support.chaos import (
    TERMINAL,
    assert_backup_matches_target,
    assert_record_matches_host,
    job_rows,
    orphan_dirs,
    repoint,
    wait_terminal,
)
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template, snapshot_names, vm_by_name, vm_names

#: The shipped stale period (a restarted worker must not need it), a relay pass a second, queued
#: jobs due again 3 s after their publish, short lock leases (the dead run's lapse sooner).
TUNING = {
    "CESO_JOBS__STALE_AFTER_S": "60",
    "CESO_JOBS__RELAY_INTERVAL_S": "1",
    "CESO_JOBS__REPUBLISH_AFTER_S": "3",
    "CESO_LOCKS__TTL_S": "3",
}
#: Host calls slowed so a kill lands while the step runs (most steps are one call).
DELAYS = ",".join(
    f"{m}=400"
    for m in (
        "CopyVirtualDisk_Task",
        "CreateVM_Task",
        "CreateSnapshot_Task",
        "RemoveSnapshot_Task",
        "PowerOnVM_Task",
        "ReconfigVM_Task",
        "MakeDirectory",
        "DeleteDatastoreFile_Task",
    )
)
RECLAIM_BOUND_S = 10.0

#: A declared call that changes the host (a vSphere task or directory, a shut down) or the target
#: and catalog (a stream or write to it, a catalog state): the steps a kill is tried at.
_CHANGES = re.compile(r"_Task|MakeDirectory|ShutdownGuest|\bstream\b|\bwrite\b|catalog the set")

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def changes_something(step: Step) -> bool:
    """True if ``step``'s declared API call changes the host, the target or the catalog."""
    return bool(_CHANGES.search(step.api))


def kill_points(kind: str, spec: Any, recorded: list[str]) -> list[Step]:
    """The declared steps of ``kind`` for ``spec`` on the API route that change something and
    that an unfaulted job recorded (``recorded``: its step names), in the declared order; one
    per name (a backup's config and disk copies are both "copy")."""
    points: list[Step] = []
    for step in steps_of(plan_of(kind, spec)):
        if API not in step.routes or (step.only is not None and not step.only(spec)):
            continue
        if not changes_something(step) or not any(step.matches(r) for r in recorded):
            continue
        if all(p.name != step.name for p in points):
            points.append(step)
    return points


@dataclass
class Bed:
    cli: Cli
    url: str
    host: str
    sim: SimulatorHost
    si: Any
    store: Path
    target: str
    start_worker: Callable[..., Worker]
    worker: Worker
    template: str = ""
    made: list[str] = field(default_factory=list)

    @property
    def datastore_dir(self) -> Path:
        return self.sim.datastore_dir()

    def submit(self, *args: str) -> str:
        result = self.cli("--json", *args, "--no-wait")
        assert result.exit_code == 0, result.stdout + result.stderr
        return str(result.json()["id"])

    def restart_worker(self) -> float:
        """SIGKILL the worker's process group and start a new one; the time it was ready."""
        self.worker.kill()
        self.worker = self.start_worker(self.host)
        return time.monotonic()


@pytest.fixture
def kill_bed(
    cli: Cli, ceso_env: dict[str, str], sim_factory: Any, start_worker: Any, tmp_path: Path
) -> Iterator[Bed]:
    repoint(ceso_env, **TUNING)
    sim: SimulatorHost = sim_factory(extra_args=("-delay", DELAYS))
    host = unique("kill")
    added = cli("host", "add", host, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    si = sim.connect()
    bed = Bed(
        cli, ceso_env["CESO_DATABASE_URL"], host, sim, si, store, target, start_worker, start_worker(host)
    )
    yield bed
    bed.worker.stop()
    for vm in set(vm_names(si)) & set(bed.made):
        destroy_vm(si, vm)


# -- what a job of each kind is, and what the host must show after it ------------------------------
@dataclass
class Case:
    kind: str
    spec: Any  # what the plan's ``only`` tests read
    source: str  # the VM, template or backup it works from
    submit: Callable[[str], tuple[str, str]]  # prefix → (job id, the VM it makes or reads)
    check: Callable[[dict[str, Any], str], None]  # (the job's row, its VM) → assertions


def _source_clean(bed: Bed, vm: str) -> None:
    """The source of a hot job: still on, no snapshot left by the job."""
    source = vm_by_name(bed.si, vm)
    assert source is not None, f"{vm}: the source is gone"
    assert snapshot_names(bed.si, source) == [], f"{vm}: orphan snapshot {snapshot_names(bed.si, source)}"
    assert str(source.runtime.powerState) == "poweredOn", (
        f"{vm}: the source was left {source.runtime.powerState}"
    )


def _new_vm_checked(bed: Bed, row: dict[str, Any], name: str, prefix: str) -> None:
    assert_record_matches_host(bed.si, bed.datastore_dir, {str(row["id"]): row}, {str(row["id"]): name})
    assert orphan_dirs(bed.si, bed.datastore_dir, prefix) == []


def _backup_checked(bed: Bed, row: dict[str, Any], vm: str) -> None:
    assert_backup_matches_target(bed.url, bed.store, row)
    _source_clean(bed, vm)


def _cases(bed: Bed) -> dict[str, Case]:
    payload = os.urandom(256 << 10) + b"\0" * (256 << 10)
    bed.template = unique("tmpl")
    make_template(bed.si, bed.datastore_dir, bed.template, payload)
    assert bed.cli("template", "add", bed.template, "--host", bed.host).exit_code == 0
    running = unique("src")
    make_template(bed.si, bed.datastore_dir, running, payload).PowerOnVM_Task()
    bed.made += [bed.template, running]

    def create(prefix: str) -> tuple[str, str]:
        name = f"{prefix}-vm"
        bed.made.append(name)
        return bed.submit("vm", "create", name, "--template", bed.template), name

    def clone(prefix: str) -> tuple[str, str]:
        name = f"{prefix}-vm"
        bed.made.append(name)
        return bed.submit("vm", "clone", running, name, "--hot"), name

    def backup(_prefix: str) -> tuple[str, str]:
        return bed.submit("backup", "create", running, "--target", bed.target), running

    def restore(prefix: str) -> tuple[str, str]:
        if not restore_from:  # the point every restore reads: one unfaulted backup of the running VM
            job_id, _vm = backup("")
            rows = wait_terminal(bed.url, [job_id], timeout=120)
            assert rows[job_id]["state"] == "succeeded", rows
            result = rows[job_id]["result"]
            restore_from["id"] = (result if isinstance(result, dict) else json.loads(result))["backup_id"]
        name = f"{prefix}-vm"
        bed.made.append(name)
        return bed.submit("backup", "restore", restore_from["id"], "--as", name), name

    def clone_checked(row: dict[str, Any], name: str) -> None:
        _new_vm_checked(bed, row, name, name.rsplit("-", 1)[0])
        _source_clean(bed, running)

    restore_from: dict[str, str] = {}
    cases = {
        "vm.create": Case("vm.create", SimpleNamespace(), bed.template, create,
                          lambda row, name: _new_vm_checked(bed, row, name, name.rsplit("-", 1)[0])),
        "vm.clone": Case("vm.clone", SimpleNamespace(hot=True), running, clone, clone_checked),
        "backup.create": Case("backup.create", SimpleNamespace(), running, backup,
                              lambda row, vm: _backup_checked(bed, row, vm)),
        "backup.restore": Case("backup.restore", SimpleNamespace(in_place=False), "", restore,
                               lambda row, name: _new_vm_checked(bed, row, name, name.rsplit("-", 1)[0])),
    }  # fmt: skip
    return cases


# -- the kill ----------------------------------------------------------------------------------------
def _wait_for_step(bed: Bed, job_id: str, step: Step, timeout: float = 90) -> bool:
    """Wait until the job records ``step`` as started; True if it is still running then."""
    deadline = time.monotonic() + timeout
    while True:
        row = job_rows(bed.url, [job_id])[job_id]
        hits = [s for s in row["steps"] or [] if step.matches(str(s.get("name")))]
        if hits:
            return any(s.get("state") == "running" for s in hits)
        assert row["state"] not in TERMINAL, f"{job_id} ended without {step.name!r}: {row}"
        assert time.monotonic() < deadline, f"{job_id}: {step.name!r} never started"
        time.sleep(0.03)


def _recovered(bed: Bed, job_id: str, ready: float, timeout: float = 60) -> float:
    """Seconds from the new worker being ready to the job running again (or ending)."""
    while True:
        row = job_rows(bed.url, [job_id])[job_id]
        if (row["state"] == "running" and row["attempts"] >= 2) or row["state"] in TERMINAL:
            return time.monotonic() - ready
        assert time.monotonic() - ready < timeout, f"not reclaimed in {timeout}s: {row}"
        time.sleep(0.05)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["vm.create", "vm.clone", "backup.create", "backup.restore"])
def test_worker_killed_at_every_step(kill_bed: Bed, kind: str) -> None:
    bed = kill_bed
    case = _cases(bed)[kind]
    baseline_id, made = case.submit(unique("base"))
    rows = wait_terminal(bed.url, [baseline_id], timeout=120)
    assert rows[baseline_id]["state"] == "succeeded", rows
    case.check(rows[baseline_id], made)
    points = kill_points(kind, case.spec, [str(s["name"]) for s in rows[baseline_id]["steps"]])
    assert len(points) >= 3, points  # the declaration gave steps that change the host
    outcomes: dict[str, tuple[str, str | None, bool, float]] = {}
    for step in points:
        prefix = unique("k")
        job_id, made = case.submit(prefix)
        caught = _wait_for_step(bed, job_id, step)
        ready = bed.restart_worker()
        recovery = _recovered(bed, job_id, ready)
        row = wait_terminal(bed.url, [job_id], timeout=180)[job_id]
        try:
            assert row["error_code"] != "internal_error", row
            case.check(row, made)
        except AssertionError as exc:
            steps = [(s["name"], s["state"], s.get("error")) for s in row["steps"] or []]
            raise AssertionError(
                f"killed at {step.name!r}: {row['state']} ({row['error_code']}) {steps}"
            ) from exc
        if kind != "backup.create":
            assert vm_names(bed.si).count(made) <= 1, f"{made}: duplicate VMs"
        outcomes[step.name] = (row["state"], row["error_code"], caught, recovery)
    lines = [
        f"  {name}: {state}{f' ({code})' if code else ''}, {'mid-step' if caught else 'after it'}, "
        f"running again {rec:.1f} s after the restart"
        for name, (state, code, caught, rec) in outcomes.items()
    ]
    recoveries = [o[3] for o in outcomes.values()]
    print(
        f"\nMATRIX | worker SIGKILL at each step of {kind} | runs {len(outcomes)} | jobs lost 0 | "
        f"records disagreeing 0 | duplicate VMs 0 | orphans 0 | recovery max {max(recoveries):.1f} s "
        f"(bound {RECLAIM_BOUND_S:.0f} s) | succeeded {sum(o[0] == 'succeeded' for o in outcomes.values())}, "
        f"failed clean {sum(o[0] == 'failed' for o in outcomes.values())}\n" + "\n".join(lines)
    )
    assert max(recoveries) <= RECLAIM_BOUND_S, outcomes
