"""The record follows the host, for the jobs that change an existing VM (power, delete, snapshots,
reconfigure): a short host outage is retried, a long one fails cleanly, SQL lost after the change
ends succeeded as the host says.

- The host cut (a TCP proxy that resets every connection) as the jobs and a hot backup start:
  during a short outage every job retries with backoff and succeeds, each retry recorded on its
  step; during one longer than ``jobs.host_retry_s`` every job fails ``host_unreachable``, the host
  is as before and the backup leaves no snapshot and no files.
- The host cut while a power-on task runs on it, for longer than the task: the answer is lost,
  the repeat reads the VM on and asks nothing again.
- PostgreSQL cut while the host-changing step of a power, delete and snapshot job runs (each
  task delayed 3 s by the simulator): each job ends ``succeeded`` and the host has its effect.

What the host has is read with pyVmomi, never from ceso's record alone. Each test prints its line
of the fault matrix (docs/operations.md). The create/clone cases: test_record_follows_host.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Cli, Worker, unique
from tests.support.chaos import job_rows, repoint, wait_terminal
from tests.support.proxy import FaultProxy
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, make_template, read_property, snapshot_names, vm_by_name

TUNING = {
    "CESO_JOBS__RELAY_INTERVAL_S": "1",
    "CESO_JOBS__REPUBLISH_AFTER_S": "3",
    "CESO_JOBS__STALE_AFTER_S": "3",
    "CESO_LOCKS__TTL_S": "3",
}

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def tuned(ceso_env: dict[str, str]) -> dict[str, str]:
    repoint(ceso_env, **TUNING)
    return ceso_env


@dataclass
class Bed:
    host: str
    sim: SimulatorHost
    si: Any  # the test's own pyVmomi session, straight to the simulator
    proxy: FaultProxy | None


def _bed(cli: Cli, sim: SimulatorHost, *, through_proxy: bool) -> Bed:
    proxy = FaultProxy((sim.host, sim.port)) if through_proxy else None
    url = f"http://127.0.0.1:{proxy.port}/sdk" if proxy else sim.url
    host = unique("kinds")
    added = cli("host", "add", host, "--url", url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    return Bed(host, sim, sim.connect(), proxy)


def _submit(cli: Cli, bed: Bed, *args: str) -> str:
    result = cli("--json", "vm", *args, "--host", bed.host, "--no-wait")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["id"])


def _power(si: Any, name: str) -> str:
    vm = vm_by_name(si, name)
    assert vm is not None, f"{name}: not on the host"
    return str(vm.runtime.powerState)


def _snapshots(si: Any, name: str) -> list[str]:
    vm = vm_by_name(si, name)
    assert vm is not None, f"{name}: not on the host"
    return snapshot_names(si, vm)


@dataclass
class Change:
    """One job on its own VM: the CLI words, and the host's state before and after, read with pyVmomi."""

    args: Callable[[str], list[str]]
    state: Callable[[Any, str], Any]
    before: Any
    after: Any
    power_on: bool = False
    snapshot: str | None = None


CHANGES = {
    "power on": Change(lambda vm: ["power", "on", vm], _power, "poweredOff", "poweredOn"),
    "power off": Change(lambda vm: ["power", "off", vm], _power, "poweredOn", "poweredOff", power_on=True),
    "delete": Change(
        lambda vm: ["delete", vm, "--yes"], lambda si, vm: vm_by_name(si, vm) is None, False, True
    ),
    "snapshot create": Change(lambda vm: ["snapshot", "create", vm, "s1"], _snapshots, [], ["s1"]),
    "snapshot delete": Change(
        lambda vm: ["snapshot", "delete", vm, "s0"], _snapshots, ["s0"], [], snapshot="s0"
    ),
    "reconfigure": Change(
        lambda vm: ["reconfigure", vm, "--cpus", "4"],
        lambda si, vm: read_property(si, vm_by_name(si, vm), "config.hardware.numCPU"),
        2,
        4,
    ),
}


def _given(bed: Bed, prefix: str, kinds: list[str]) -> dict[str, str]:
    """One VM per kind, in its "before" state; returns kind → VM name."""
    names = {}
    for i, kind in enumerate(kinds):
        change, name = CHANGES[kind], f"{prefix}-{i}"
        vm = create_vm(bed.si, name)
        if change.power_on:
            assert vm.PowerOnVM_Task().info.state == "success"
        if change.snapshot:
            task = vm.CreateSnapshot_Task(name=change.snapshot, memory=False, quiesce=False)
            assert task.info.state == "success"
        names[kind] = name
    return names


def _backup_state(cli: Cli, si: Any, vm: str) -> tuple[list[str], list[str]]:
    """A hot backup's traces: the VM's snapshots (pyVmomi; the temporary one must be gone) and the
    statuses of its sets in the catalog."""
    listed = cli("--json", "backup", "list", "--vm", vm)
    assert listed.exit_code == 0, listed.stdout + listed.stderr
    return _snapshots(si, vm), sorted(b["status"] for b in listed.json())


@pytest.mark.parametrize(("outage_s", "retry_s"), [(4.0, 60.0), (None, 4.0)], ids=["short", "long"])
def test_changes_started_while_the_host_is_cut(
    cli: Cli,
    tuned: dict[str, str],
    sim_factory: Any,
    start_worker: Any,
    tmp_path: Path,
    outage_s: float | None,
    retry_s: float,
) -> None:
    """The worker (a slot per job) receives one job of each kind, and a hot backup, with the host
    cut. Short outage: each retries (the login and reads of its first step) and succeeds, with the
    host's state as asked; the backup's set is completed, its files at the target, its snapshot
    gone. Long outage: each fails host_unreachable within the retry window and the host is as it
    was; the backup leaves no snapshot and a failed set, its files deleted."""
    url = tuned["CESO_DATABASE_URL"]
    sim = sim_factory()
    bed = _bed(cli, sim, through_proxy=True)
    assert bed.proxy is not None
    worker: Worker = start_worker(
        bed.host, concurrency=len(CHANGES) + 1, env={"CESO_JOBS__HOST_RETRY_S": str(retry_s)}
    )
    kinds = list(CHANGES)
    names = _given(bed, unique("cut"), kinds)
    source = unique("bkp")
    running = make_template(bed.si, sim.datastore_dir(), source, os.urandom(256 << 10)).PowerOnVM_Task()
    assert running.info.state == "success"
    store, target = tmp_path / "store", unique("target")
    store.mkdir()
    added = cli("--json", "target", "add", target, "--type", "local", "--path", str(store))
    assert added.exit_code == 0, added.stdout + added.stderr
    os.kill(worker.proc.pid, signal.SIGSTOP)  # the messages wait until the host is cut
    try:
        jobs = {_submit(cli, bed, *CHANGES[k].args(names[k])): k for k in kinds}
        backup = cli(
            "--json", "backup", "create", source, "--target", target, "--host", bed.host, "--no-wait"
        )
        assert backup.exit_code == 0, backup.stdout + backup.stderr
        jobs[str(backup.json()["id"])] = "backup"
        bed.proxy.cut()
        cut_at = time.monotonic()
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)
    if outage_s is not None:
        time.sleep(outage_s)
        bed.proxy.restore()
    rows = wait_terminal(url, list(jobs), timeout=retry_s + 120)
    ended = time.monotonic() - cut_at
    bed.proxy.restore()
    outcomes = {jobs[i]: (r["state"], r["error_code"]) for i, r in rows.items()}
    on_host = {k: CHANGES[k].state(bed.si, names[k]) for k in kinds}
    retried = {jobs[i]: [t for s in r["steps"] for t in s.get("retries", [])] for i, r in rows.items()}
    backed_up = _backup_state(cli, bed.si, source)
    stored = sorted(p.name for p in store.rglob("*") if p.is_file())
    if outage_s is not None:
        assert set(outcomes.values()) == {("succeeded", None)}, (outcomes, rows)
        assert on_host == {k: CHANGES[k].after for k in kinds}
        assert all(retried.values()), retried  # every job met the outage, and said so per try
        assert {t["code"] for ts in retried.values() for t in ts} <= {"connection_lost", "host_unreachable"}
        assert backed_up == ([], ["completed"])
        assert "manifest.json" in stored
    else:
        assert set(outcomes.values()) == {("failed", "host_unreachable")}, outcomes
        assert on_host == {k: CHANGES[k].before for k in kinds}  # nothing changed on the host
        assert backed_up[0] == [] and backed_up[1] in ([], ["failed"]), backed_up
        assert stored == []
    bed.proxy.close()
    what = f"host cut {outage_s:.0f} s" if outage_s else f"host cut longer than host_retry_s={retry_s:.0f}"
    print(
        f"\nMATRIX | {what}, power/delete/snapshot/reconfigure/backup | runs 1 | jobs {len(jobs)} | jobs lost 0 | "
        f"records disagreeing 0 | retries {sum(len(t) for t in retried.values())} | "
        + (
            f"all succeeded, the last {ended - outage_s:.1f} s after the host came back"
            if outage_s
            else f"all failed host_unreachable, host unchanged, the last {ended:.1f} s after the cut"
        )
    )


def _wait_step(url: str, job_id: str, step: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job_rows(url, [job_id])[job_id]["current_step"] != step:
        assert time.monotonic() < deadline, job_rows(url, [job_id])
        time.sleep(0.05)


def test_host_cut_while_the_power_on_task_runs(
    cli: Cli, tuned: dict[str, str], sim_factory: Any, start_worker: Any
) -> None:
    """The host is cut 0-1 s into a 2 s power-on task and comes back after 5 s: the answer is lost,
    the repeat finds the VM on and asks nothing again (one PowerOnVM_Task), the job succeeds."""
    url = tuned["CESO_DATABASE_URL"]
    sim = sim_factory(extra_args=("-delay", "PowerOnVM_Task=2000"))
    bed = _bed(cli, sim, through_proxy=True)
    assert bed.proxy is not None
    start_worker(bed.host)
    name = _given(bed, unique("task"), ["power on"])["power on"]
    job_id = _submit(cli, bed, "power", "on", name)
    _wait_step(url, job_id, "power on")
    time.sleep(0.3)  # the request is on its way
    bed.proxy.cut()
    time.sleep(5)
    bed.proxy.restore()
    row = wait_terminal(url, [job_id], timeout=90)[job_id]
    assert row["state"] == "succeeded", row
    assert _power(bed.si, name) == "poweredOn"
    step = next(s for s in row["steps"] if s["name"] == "power on")
    assert step.get("retries"), step
    asked = [c for c in step.get("calls", []) if "PowerOn" in c["method"]]
    assert len(asked) == 1, step  # the repeat read the state and did not ask again
    bed.proxy.close()
    print(
        f"\nMATRIX | host cut 5 s during a 2 s power-on task | runs 1 | jobs lost 0 | records disagreeing 0 | "
        f"tries {len(step['retries']) + 1}, PowerOnVM_Task sent once"
    )


# -- SQL lost after the host-changing step: the record follows the host -------------------------------
@pytest.fixture
def sql_proxy(tuned: dict[str, str]) -> Iterator[tuple[FaultProxy, str]]:
    direct = tuned["CESO_DATABASE_URL"]
    parts = urlsplit(direct)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    repoint(
        tuned, CESO_DATABASE_URL=parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    )
    yield proxy, direct
    proxy.close()


SQL_CASES = {"power on": "power on", "delete": "destroy", "snapshot create": "create snapshot"}


def test_sql_lost_after_the_host_changing_step(
    cli: Cli, sql_proxy: tuple[FaultProxy, str], sim_factory: Any, start_worker: Any
) -> None:
    """PostgreSQL is cut while each job's host-changing task runs (3 s on the simulator), one job at
    a time: the change is made on the host but cannot be recorded. Once SQL answers, each job is
    succeeded, reconciled in place or by its redelivery, and the host has the change."""
    proxy, direct = sql_proxy
    delays = "PowerOnVM_Task=3000,Destroy_Task=3000,CreateSnapshot_Task=3000"
    bed = _bed(cli, sim_factory(extra_args=("-delay", delays)), through_proxy=False)
    worker: Worker = start_worker(bed.host)
    names = _given(bed, unique("sql"), list(SQL_CASES))
    reconciled, redelivered = 0, 0
    for kind, step in SQL_CASES.items():
        job_id = _submit(cli, bed, *CHANGES[kind].args(names[kind]))
        _wait_step(direct, job_id, step)
        proxy.cut()
        time.sleep(5)  # the task ends on the host, the next write of the job fails
        proxy.restore()
        row = wait_terminal(direct, [job_id], timeout=90)[job_id]
        assert row["state"] == "succeeded", (kind, row, worker.output()[-3000:])
        assert CHANGES[kind].state(bed.si, names[kind]) == CHANGES[kind].after, kind
        result = row["result"] if isinstance(row["result"], dict) else json.loads(row["result"])
        reconciled += "reconciled" in result
        redelivered += row["attempts"] > 1
    assert "database unreachable" in worker.output()  # the jobs did meet the outage
    print(
        f"\nMATRIX | SQL cut after the host-changing step (power on, delete, snapshot create) | runs 1 | "
        f"jobs {len(SQL_CASES)} | jobs lost 0 | records disagreeing 0 | reconciled in place {reconciled}, "
        f"by a redelivery {redelivered}"
    )
