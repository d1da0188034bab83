"""Step logic of provisioning, power and delete jobs on FakeBackend: milliseconds a case.

The jobs run for real (SQL row, claim, steps, Redis locks, audit) through
``run_job``; only the host is the in-memory FakeBackend, plugged in where a job
asks ``ctx.backend()``. What a user would check is read from the fake host's
own state (files, VMs, power, snapshots), not from what the job says. The
simulator tests (test_create.py, test_clone.py, lifecycle/) stay the
reference for the real routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session

from ceso.backends.fake import FakeBackend
from ceso.db.models import Host, Job
from ceso.errors import OperationError
from ceso.jobs.request import JobRequest
from ceso.jobs.runner import run_job
from ceso.jobs.store import get_job
from ceso.jobs.submit import submit_job
from ceso.runtime import Runtime, get_runtime

HOST = "fake-host"


@pytest.fixture
def fake(ceso_env: dict[str, str]) -> Iterator[tuple[Runtime, FakeBackend]]:
    runtime = get_runtime()
    with Session(runtime.engine) as session:
        session.add(Host(name=HOST, url=f"https://{HOST}.invalid/sdk", username="root"))
        session.commit()
    backend = FakeBackend(host=HOST)

    def factory(_host: Host, _route: str, record: Any) -> FakeBackend:
        backend.record = record  # calls land on the job's steps, as the real routes' do
        return backend

    runtime.backend_factory = factory
    yield runtime, backend
    runtime.backend_factory = None


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
