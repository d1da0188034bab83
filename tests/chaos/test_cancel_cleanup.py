"""Cancel at every step that changes the host: nothing the job made is left behind.

A simulator whose writing methods each take ``DELAY_MS`` gives every such step time for the
worker's heartbeat (0.5 s) to see the cancel while the step runs, so the job stops at the very
next step boundary. Each case cancels one job while step X runs and then checks, reading the
simulator with pyVmomi and its datastore directory on disk (not what ceso says), that no VM,
directory, disk or snapshot is left and the source is in its power state again; and from the
job's own record that the cancel landed at X (no step other than a cleanup step ran after it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import make_template, read_property, snapshot_names, vm_by_name, vm_names

DELAY_MS = 700
HEARTBEAT_S = "0.2"  # the worker sees a cancel well within one slow call
SLOW_METHODS = (
    "MakeDirectory",
    "CopyVirtualDisk_Task",
    "CreateVM_Task",
    "PowerOnVM_Task",
    "CreateSnapshot_Task",
)
BUILD_STEPS = ("make directory", "copy disk 1/1", "create VM", "power on")
STEP_TIMEOUT_S = 60.0

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class SlowHost:
    cli: Cli
    name: str
    si: Any
    datastore_dir: Path


@pytest.fixture
def slow_host(cli: Cli, sim_factory: Any, start_worker: Any) -> Iterator[SlowHost]:
    delays = ",".join(f"{m}={DELAY_MS}" for m in SLOW_METHODS)
    sim: SimulatorHost = sim_factory(extra_args=("-delay", delays))
    name = unique("slow")
    added = cli("host", "add", name, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stderr
    start_worker(name, concurrency=1, env={"CESO_JOBS__HEARTBEAT_S": HEARTBEAT_S})
    yield SlowHost(cli, name, sim.connect(), sim.datastore_dir())


def _status(cli: Cli, job_id: str) -> dict[str, Any]:
    out = cli("--json", "job", "status", job_id)
    assert out.exit_code == 0, out.stdout + out.stderr
    return out.json()  # type: ignore[no-any-return]


def cancel_during(cli: Cli, job_id: str, step: str) -> dict[str, Any]:
    """Cancel job ``job_id`` while its step ``step`` runs; return the job once it has ended."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while (job := _status(cli, job_id))["current_step"] != step:
        assert job["state"] in ("queued", "running"), f"job ended before step {step!r}: {job}"
        assert time.monotonic() < deadline, f"step {step!r} never started: {job}"
        time.sleep(0.05)
    assert cli("job", "cancel", job_id).exit_code == 0
    while (job := _status(cli, job_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job did not end after the cancel: {job}"
        time.sleep(0.1)
    return job


def assert_stopped_at(job: dict[str, Any], step: str) -> None:
    """The job was cancelled, and after ``step`` only cleanup steps ran, each successfully."""
    assert job["state"] == "cancelled", job
    names = [s["name"] for s in job["steps"]]
    after = job["steps"][names.index(step) + 1 :]
    assert all(s.get("cleanup") for s in after), f"steps ran after the cancel at {step!r}: {names}"
    assert all(s["state"] == "succeeded" for s in after), after


def power_state(si: Any, vm: str) -> str:
    return str(read_property(si, vm_by_name(si, vm), "runtime.powerState"))


def _left(host: SlowHost) -> tuple[list[str], list[str]]:
    """What an independent reader sees: registered VMs and the datastore's directories and files."""
    files = sorted(str(p.relative_to(host.datastore_dir)) for p in host.datastore_dir.rglob("*"))
    return vm_names(host.si), files


def test_cancelled_create_leaves_nothing(slow_host: SlowHost) -> None:
    host = slow_host
    template = unique("tmpl")
    make_template(host.si, host.datastore_dir, template, os.urandom(256 << 10))
    assert host.cli("template", "add", template, "--host", host.name).exit_code == 0
    before = _left(host)
    for step in BUILD_STEPS:
        args = ["--json", "vm", "create", unique("new"), "--template", template, "--host", host.name]
        submitted = host.cli(*args, "--no-wait")
        assert submitted.exit_code == 0, submitted.stdout + submitted.stderr
        job = cancel_during(host.cli, submitted.json()["id"], step)
        assert_stopped_at(job, step)
        assert _left(host) == before, step


@pytest.mark.parametrize("mode", ["cold", "hot"])
def test_cancelled_clone_leaves_nothing_and_the_source_as_it_was(slow_host: SlowHost, mode: str) -> None:
    host = slow_host
    source = unique("src")
    vm = make_template(host.si, host.datastore_dir, source, os.urandom(256 << 10))
    if mode == "hot":
        vm.PowerOnVM_Task()
    power = power_state(host.si, source)
    before = _left(host)
    steps: Sequence[str] = (
        [*BUILD_STEPS[:1], "snapshot source", *BUILD_STEPS[1:]] if mode == "hot" else BUILD_STEPS
    )
    for step in steps:
        args = ["--json", "vm", "clone", source, unique("copy"), "--host", host.name, "--no-wait"]
        submitted = host.cli(*args, *(["--hot"] if mode == "hot" else []))
        assert submitted.exit_code == 0, submitted.stdout + submitted.stderr
        job = cancel_during(host.cli, submitted.json()["id"], step)
        assert_stopped_at(job, step)
        names = [s["name"] for s in job["steps"]]
        assert ("remove source snapshot" in names) == ("snapshot source" in names), names
        assert _left(host) == before, step
        assert snapshot_names(host.si, vm_by_name(host.si, source)) == [], step
        assert power_state(host.si, source) == power, step


def test_cancelled_restore_leaves_nothing(slow_host: SlowHost, tmp_path: Path) -> None:
    host = slow_host
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert host.cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    source = unique("orig")
    make_template(host.si, host.datastore_dir, source, os.urandom(256 << 10))
    made = host.cli("--json", "backup", "create", source, "--target", target, "--timeout", "120")
    assert made.exit_code == 0, made.stdout + made.stderr
    backup_id = made.json()["result"]["backup_id"]
    before = _left(host)
    for step in ("make directory", "create VM", "power on"):
        submitted = host.cli("--json", "backup", "restore", backup_id, "--as", unique("back"), "--no-wait")
        assert submitted.exit_code == 0, submitted.stdout + submitted.stderr
        job = cancel_during(host.cli, submitted.json()["id"], step)
        assert_stopped_at(job, step)
        assert _left(host) == before, step
