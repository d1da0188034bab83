"""Step logic of provisioning, power and delete jobs on FakeBackend: milliseconds a case.

The jobs run for real (SQL row, claim, steps, Redis locks, audit) through
``run_job``; only the host is the in-memory FakeBackend, plugged in where a job
asks ``ctx.backend()``. What a user would check is read from the fake host's
own state (files, VMs, power, snapshots), not from what the job says. The
simulator tests (test_create.py, test_clone.py, lifecycle/) stay the
reference for the real routes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from ceso.backends.fake import FakeBackend
from ceso.db.models import Job
from ceso.errors import OperationError, TransientError
from ceso.jobs.request import JobRequest
from ceso.jobs.runner import Delivery, run_job
from ceso.jobs.store import get_job
from ceso.jobs.submit import submit_job
from ceso.runtime import Runtime
from tests.conftest import FAKE_HOST as HOST


def _run(runtime: Runtime, kind: str, vm: str, **params: Any) -> Job:
    job, _ = submit_job(runtime, JobRequest(kind=kind, host=HOST, target=vm, params=params))
    run_job(runtime, job.id)
    with Session(runtime.engine) as session:
        return get_job(session, job.id)


def _steps(job: Job) -> list[str]:
    return [s["name"] for s in job.steps or []]


# -- provisioning ------------------------------------------------------------------------------
def test_cold_clone_builds_a_new_vm_from_the_source_disks(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    source = host.add_vm("src", disks_kb=(2048, 1024))
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "succeeded", job.error_message
    vm = host.find("copy")
    assert vm.power_state == "poweredOn" and source.power_state == "poweredOff"
    assert {"copy/copy.vmdk", "copy/copy_1.vmdk", "copy/copy.vmx"} <= host.files["datastore1"]
    macs = [d.macAddress for d in vm.config["config.hardware.device"] if getattr(d, "macAddress", None)]
    assert len(macs) == 1 and macs[0].startswith("00:50:56:") and macs[0] != "00:0c:29:00:00:00"
    extra = {o.key: o.value for o in vm.config["config.extraConfig"]}
    assert extra["ceso.job-id"] == job.id and "guestinfo.metadata" in extra
    assert _steps(job)[-4:] == ["copy disk 1/2", "copy disk 2/2", "create VM", "power on"]
    assert all(s.get("route") == "api" for s in job.steps or [] if s["name"] != "inspect source")
    copy_calls = [c for s in job.steps or [] for c in s.get("calls", []) if c["method"] == "copy_disk"]
    assert [c["args"]["dest"] for c in copy_calls] == [
        "[datastore1] copy/copy.vmdk",
        "[datastore1] copy/copy_1.vmdk",
    ]


def test_a_failed_copy_leaves_nothing_behind(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("src", disks_kb=(2048, 1024))
    before = {ds: set(files) for ds, files in host.files.items()}
    host.fail("create_vm", OperationError("InvalidDeviceSpec on host fake-host", code="esxi_fault"))
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "failed" and job.error_code == "esxi_fault"
    assert host.files == before and not host.exists("copy")
    assert _steps(job)[-1] == "clean up after failure"


def test_a_running_source_is_refused_before_anything_is_made(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("src", power_state="poweredOn")
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "failed" and job.error_code == "conflict"
    assert "--shutdown-source or --hot" in (job.error_message or "")
    assert not [c for c in host.calls if c[0] != "power_off"] and not host.exists("copy")


def test_hot_clone_removes_its_snapshot_and_keeps_the_users(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    source = host.add_vm("src", power_state="poweredOn")
    host.create_snapshot(source, "users-own")
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src", hot=True)
    assert job.state == "succeeded", job.error_message
    assert [n.name for n in host.snapshot_tree(source)] == ["users-own"]
    assert not host.snapshot_tree(source)[0].childSnapshotList
    assert source.power_state == "poweredOn"
    assert "remove source snapshot" in _steps(job)


def test_shutdown_source_without_tools_powers_off_and_back_on(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    source = host.add_vm("src", power_state="poweredOn", tools=False)
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src", shutdown_source=True)
    assert job.state == "succeeded", job.error_message
    methods = [m for m, _ in host.calls]
    assert methods.index("ask_guest_shutdown") < methods.index("power_off") < methods.index("copy_disk")
    assert source.power_state == "poweredOn" and host.find("copy").power_state == "poweredOn"


def test_an_existing_name_is_refused(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("src")
    host.add_vm("copy")
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "failed" and job.error_code == "conflict"
    assert len([vm for vm in host.vms if vm.name == "copy"]) == 1


# -- the record follows the host (ceso.operations.reconcile) ----------------------------------------
def _host_facts(host: FakeBackend, name: str) -> dict[str, Any]:
    """What a user would read on the host: the VM's uuid, MACs, disks and power, its job marker."""
    vm = host.find(name)
    devices = vm.config["config.hardware.device"]
    return {
        "uuid": vm.config["config.uuid"],
        "macs": [d.macAddress for d in devices if getattr(d, "macAddress", None)],
        "disks": [d.backing.fileName for d in devices if type(d).__name__.endswith("VirtualDisk")],
        "power_state": vm.power_state,
        "marker": {o.key: o.value for o in vm.config["config.extraConfig"]}["ceso.job-id"],
    }


def test_a_lost_answer_is_asked_again_and_the_attempts_recorded(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("src")
    host.lose_answer("create_vm", TransientError("create VM: connection lost", code="connection_lost"))
    host.lose_answer("power_on", TransientError("power on: connection lost", code="connection_lost"))
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "succeeded", (job.error_code, job.error_message)
    assert [vm.name for vm in host.vms].count("copy") == 1  # asked again: not made twice
    assert host.find("copy").power_state == "poweredOn"
    assert [m for m, _ in host.calls].count("create_vm") == 1  # the second try found its marked VM
    steps = {s["name"]: s for s in job.steps or []}
    for name in ("create VM", "power on"):
        assert steps[name]["state"] == "succeeded"
        assert [(r["try"], r["code"]) for r in steps[name]["retries"]] == [(1, "connection_lost")]
    assert "reconcile with host" not in steps and "retries" not in steps["copy disk 1/1"]


def test_a_transient_fault_that_lasts_fails_with_host_unreachable(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, host = fake
    host.add_vm("src")
    before = {ds: set(files) for ds, files in host.files.items()}
    monkeypatch.setattr(runtime.settings.jobs, "host_retry_s", 1.0)
    real = host.power_on

    def unreachable(vm: Any) -> str:
        host.calls.append(("power_on", {}))
        raise TransientError("power on: connection reset", code="connection_lost")

    monkeypatch.setattr(host, "power_on", unreachable)
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    monkeypatch.setattr(host, "power_on", real)
    assert (job.state, job.error_code) == ("failed", "host_unreachable"), job.error_message
    tries = next(s for s in job.steps or [] if s["name"] == "power on")["retries"]
    assert len(tries) >= 2 and tries[-1]["wait_s"] is None
    assert [m for m, _ in host.calls].count("power_on") == len(tries)
    assert host.files == before and not host.exists("copy")


def test_a_lost_answer_after_the_last_step_ends_succeeded_as_the_host_says(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, host = fake
    monkeypatch.setattr(runtime.settings.jobs, "host_retry_s", 0.0)  # no retry: the fault stops the job
    host.add_vm("src")
    host.lose_answer("power_on", TransientError("power on: connection lost", code="connection_lost"))
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "succeeded", (job.error_code, job.error_message)
    facts = _host_facts(host, "copy")
    assert facts["marker"] == job.id and facts["power_state"] == "poweredOn"
    result = job.result or {}
    assert {k: result[k] for k in ("uuid", "macs", "disks", "power_state")} == {
        k: facts[k] for k in ("uuid", "macs", "disks", "power_state")
    }
    assert result["reconciled"] == "connection_lost" and result["source"] == "src"
    assert [vm.name for vm in host.vms].count("copy") == 1
    steps = {s["name"]: s for s in job.steps or []}
    assert steps["power on"]["state"] == "failed"
    assert steps["reconcile with host"]["complete"] is True
    assert "clean up after failure" not in steps


def test_a_fault_before_the_vm_is_complete_cleans_up_and_fails(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, host = fake
    monkeypatch.setattr(runtime.settings.jobs, "host_retry_s", 0.0)
    host.add_vm("src")
    before = {ds: set(files) for ds, files in host.files.items()}
    host.fail("power_on", TransientError("power on: connection lost", code="connection_lost"))
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert (job.state, job.error_code) == ("failed", "connection_lost")
    assert host.files == before and not host.exists("copy")
    assert "clean up after failure" in _steps(job)  # the VM was not built: the handler cleaned up
    assert "reconcile with host" not in _steps(job)  # and the runner did not ask the host again


def test_a_refusal_after_the_host_acted_is_not_taken_for_success(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("src")
    before = {ds: set(files) for ds, files in host.files.items()}
    host.lose_answer("power_on", OperationError("power on: InvalidState", code="esxi_fault"))
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert (job.state, job.error_code) == ("failed", "esxi_fault")  # only faults are reconciled
    assert host.files == before and not host.exists("copy")
    assert "reconcile with host" not in _steps(job)


def test_sql_lost_as_the_outcome_is_written_ends_succeeded_as_the_host_says(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQL fails once as the outcome is written: the runner reads the host back and records the
    job succeeded, with the host's facts, in the same delivery."""
    import sqlalchemy as sa

    import ceso.jobs.context as context

    runtime, host = fake
    host.add_vm("src")
    real = context.finish_running

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(context, "finish_running", real)
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(context, "finish_running", fails_once)
    job = _run(runtime, "vm.clone", "copy", name="copy", source="src")
    assert job.state == "succeeded", (job.error_code, job.error_message)
    assert (job.result or {})["reconciled"] == "database_unreachable"
    assert (job.result or {})["uuid"] == _host_facts(host, "copy")["uuid"]


def test_a_redelivered_attempt_adopts_the_vm_its_predecessor_finished(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQL fails as the outcome is written, and again as the reconciled outcome is: the delivery
    comes again (RETRY) and finds its own complete VM, which it keeps (no second create_vm), ending
    succeeded with the host's facts."""
    import sqlalchemy as sa

    import ceso.jobs.context as context

    runtime, host = fake
    host.add_vm("src")
    real, failures = context.finish_running, []

    def fails_twice(*args: Any, **kwargs: Any) -> Any:
        failures.append(1)  # the outcome's write, then the reconciled outcome's write
        if len(failures) == 2:
            monkeypatch.setattr(context, "finish_running", real)
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(context, "finish_running", fails_twice)
    job, _ = submit_job(
        runtime,
        JobRequest(kind="vm.clone", host=HOST, target="copy", params={"name": "copy", "source": "src"}),
    )
    assert run_job(runtime, job.id) == Delivery.RETRY
    with Session(runtime.engine) as session:
        row = get_job(session, job.id)
        assert row.state == "running"
        row.heartbeat_at = row.heartbeat_at - timedelta(hours=1)  # as a dead worker's
        session.add(row)
        session.commit()
    assert run_job(runtime, job.id) == Delivery.DONE
    with Session(runtime.engine) as session:
        done = get_job(session, job.id)
    assert done.state == "succeeded", (done.error_code, done.error_message)
    assert done.attempts == 2
    assert [m for m, _ in host.calls].count("create_vm") == 1
    facts = _host_facts(host, "copy")
    assert facts["power_state"] == "poweredOn" and facts["marker"] == job.id
    assert (done.result or {})["uuid"] == facts["uuid"] and (done.result or {})["macs"] == facts["macs"]
    check = [s for s in done.steps or [] if s["name"] == "check name"]
    assert check[-1].get("adopted") is True


# -- power and delete -------------------------------------------------------------------------------
def test_power_on_then_on_again_is_a_noted_no_op(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    vm = host.add_vm("web")
    first = _run(runtime, "vm.power", "web", name="web", action="on")
    assert first.state == "succeeded" and vm.power_state == "poweredOn"
    again = _run(runtime, "vm.power", "web", name="web", action="on")
    assert again.state == "succeeded" and again.result and again.result["changed"] is False
    assert [m for m, _ in host.calls] == ["power_on"]


def test_shutdown_without_tools_fails_unless_forced(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    vm = host.add_vm("web", power_state="poweredOn", tools=False)
    plain = _run(runtime, "vm.power", "web", name="web", action="shutdown")
    assert plain.state == "failed" and vm.power_state == "poweredOn"
    forced = _run(runtime, "vm.power", "web", name="web", action="shutdown", force=True)
    assert forced.state == "succeeded", forced.error_message
    assert vm.power_state == "poweredOff" and "power off (fallback)" in _steps(forced)


def test_delete_refuses_a_running_vm_and_force_removes_it(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("web", power_state="poweredOn", disks_kb=(1024, 1024))
    refused = _run(runtime, "vm.delete", "web", name="web")
    assert refused.state == "failed" and refused.error_code == "conflict"
    assert host.exists("web")
    deleted = _run(runtime, "vm.delete", "web", name="web", force=True)
    assert deleted.state == "succeeded", deleted.error_message
    assert not host.exists("web") and host.files["datastore1"] == set()
    assert deleted.result and deleted.result["folder_removed"] is True


def test_delete_keeps_a_folder_with_foreign_files(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, host = fake
    host.add_vm("web")
    host.files["datastore1"].add("web/notes.txt")
    job = _run(runtime, "vm.delete", "web", name="web")
    assert job.state == "succeeded", job.error_message
    assert host.files["datastore1"] == {"web/", "web/notes.txt"}
    assert job.result and job.result["folder_removed"] is False


def test_delete_of_a_missing_vm_is_not_found(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, _host = fake
    job = _run(runtime, "vm.delete", "ghost", name="ghost")
    assert job.state == "failed" and job.error_code == "not_found"
