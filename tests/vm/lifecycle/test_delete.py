"""`ceso vm delete`, `vm protect` and `vm unprotect` end to end: worker, Redis, SQL, simulator."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from ceso.db.models import VmProtection
from ceso.jobs.request import JobRequest
from ceso.jobs.store import create_job
from ceso.jobs.submit import submit_job
from ceso.jobs.wait import wait_for_job
from ceso.runtime import get_runtime
from tests.support.vms import vm_by_name
from tests.vm.lifecycle.conftest import Lab, calls_of, steps_of


def _queued_job_on(lab: Lab, name: str) -> str:
    """A queued job row targeting ``name`` that no worker will run (it is never published)."""
    job, _ = create_job(
        get_runtime().engine,
        kind="vm.power",
        host=lab.host,
        target=name,
        params={"name": name, "action": "on"},
        actor="test",
        idempotency_key=None,
        max_attempts=3,
    )
    return job.id


def test_delete_destroys_the_vm_and_its_folder(lab: Lab) -> None:
    name = lab.vm("del")
    folder = lab.datastore_dir / name
    assert (folder / f"{name}.vmx").exists()

    key = f"del-{name}"
    job = lab.ok("vm", "delete", name, "--yes", "--idempotency-key", key)

    assert job["kind"] == "vm.delete" and job["target"] == name
    assert vm_by_name(lab.si, name) is None
    assert not folder.exists()
    steps = steps_of(job)
    assert [c["method"] for c in steps["destroy"]["calls"]] == ["VirtualMachine.Destroy_Task"]
    assert "power off" not in steps and "VirtualMachine.PowerOffVM_Task" not in calls_of(job)
    assert steps["lock"]["vms"] == [name] and steps["lock"]["datastores"] == ["LocalDS_0"]
    result = job["result"]
    assert result["folder_removed"] is True and result["powered_off"] is False
    assert result["files"] == [f"[LocalDS_0] {name}/{name}.vmx", f"[LocalDS_0] {name}/{name}.vmdk"]
    # The same key again returns the first job, although the VM is gone now; another VM's request may not reuse it.
    assert lab.ok("vm", "delete", name, "--yes", "--idempotency-key", key)["id"] == job["id"]
    other = lab.vm("other")
    lab.refused(["vm", "delete", other, "--yes", "--idempotency-key", key], 5, "already used by job")
    assert lab.job_count() == 1


def test_a_running_vm_needs_force(lab: Lab) -> None:
    name = lab.vm("run", power_on=True)
    before = lab.job_count()
    lab.refused(["vm", "delete", name, "--yes"], 5, "pass --force")
    assert lab.get(name).runtime.powerState == "poweredOn"
    assert lab.job_count() == before

    job = lab.ok("vm", "delete", name, "--yes", "--force")

    assert vm_by_name(lab.si, name) is None
    assert not (lab.datastore_dir / name).exists()
    assert calls_of(job).index("VirtualMachine.PowerOffVM_Task") < calls_of(job).index(
        "VirtualMachine.Destroy_Task"
    )
    assert job["result"]["powered_off"] is True


def test_refusals_change_nothing(lab: Lab) -> None:
    keep, template, protected, busy = (lab.vm(p) for p in ("keep", "tmpl", "prot", "busy"))
    assert lab.cli("template", "add", template, "--host", lab.host).exit_code in (0, 1)
    assert lab.cli("vm", "protect", protected, "--reason", "payroll db").exit_code == 0
    _queued_job_on(lab, busy)
    before = lab.job_count()
    cases: list[tuple[list[str], int, str]] = [
        (["vm", "delete", "nope-404", "--yes"], 4, "no VM named 'nope-404'"),
        (["vm", "delete", "a/b", "--yes"], 2, "would break a datastore path"),
        (["vm", "delete", keep, "--host", "no-such-host", "--yes"], 4, "no-such-host"),
        (["vm", "delete", template, "--yes"], 5, "is a registered template"),
        (["vm", "delete", protected, "--yes"], 3, "is protected (payroll db)"),
        (["vm", "delete", busy, "--yes"], 5, "another job in flight: vm.power"),
        (["vm", "delete", keep], 2, "pass --yes"),
        (["--json", "vm", "delete", keep], 2, ""),
    ]
    for args, code, fragment in cases:
        if args[0] == "--json":
            result = lab.cli(*args)
            assert result.exit_code == code and "--yes" in result.json()["error"]["message"]
            continue
        lab.refused(args, code, fragment)
    for name in (keep, template, protected, busy):
        assert (lab.datastore_dir / name / f"{name}.vmx").exists() and vm_by_name(lab.si, name) is not None
    assert lab.job_count() == before

    dry = lab.cli("--json", "--dry-run", "vm", "delete", keep)
    assert dry.exit_code == 0, dry.stderr
    assert dry.json()["kind"] == "vm.delete" and any("Destroy_Task" in s for s in dry.json()["plan"])
    assert vm_by_name(lab.si, keep) is not None and lab.job_count() == before


def test_the_worker_checks_again(lab: Lab) -> None:
    """A request that slipped past the CLI (state changed after submit) is refused by the worker."""
    name = lab.vm("late")
    runtime = get_runtime()
    request = JobRequest(kind="vm.delete", host=lab.host, target=name, params={"name": name, "force": False})

    assert lab.cli("vm", "protect", name).exit_code == 0
    job, _ = submit_job(runtime, request)
    done = wait_for_job(runtime.engine, job.id, timeout=60)
    assert (done.state, done.error_code) == ("failed", "not_permitted"), done.error_message

    assert lab.cli("vm", "unprotect", name).exit_code == 0
    other = _queued_job_on(lab, name)
    job, _ = submit_job(runtime, request)
    done = wait_for_job(runtime.engine, job.id, timeout=60)
    assert (done.state, done.error_code) == ("failed", "conflict")
    assert other in (done.error_message or "")
    assert vm_by_name(lab.si, name) is not None and (lab.datastore_dir / name).exists()


def test_confirmation_at_a_terminal(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ceso.cli.prompts.stdin_is_terminal", lambda: True)
    name = lab.vm("ask")
    before = lab.job_count()

    no = lab.cli("vm", "delete", name, input="n\n")
    assert no.exit_code == 1 and "aborted" in no.stderr
    assert f"Delete VM {name}" in no.stderr and f"[LocalDS_0] {name}/{name}.vmdk" in no.stderr
    assert vm_by_name(lab.si, name) is not None and lab.job_count() == before

    yes = lab.cli("vm", "delete", name, "--timeout", "60", input="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert vm_by_name(lab.si, name) is None


def _protections() -> list[tuple[str, str, str | None]]:
    with Session(get_runtime().engine) as session:
        return [(p.host, p.vm_name, p.reason) for p in session.exec(select(VmProtection)).all()]


def test_protect_and_unprotect(lab: Lab) -> None:
    name = lab.vm("prot")
    first: dict[str, Any] = lab.cli("--json", "vm", "protect", name, "--reason", "payroll").json()
    assert first["protected"] is True and first["changed"] is True and first["host"] == lab.host
    assert _protections() == [(lab.host, name, "payroll")]
    again = lab.cli("--json", "vm", "protect", name, "--reason", "payroll").json()
    assert again["changed"] is False and _protections() == [(lab.host, name, "payroll")]

    off = lab.cli("--json", "vm", "unprotect", name).json()
    assert off["protected"] is False and off["changed"] is True and _protections() == []
    assert lab.cli("--json", "vm", "unprotect", name).json()["changed"] is False

    lab.refused(["vm", "protect", "nope-404"], 4, "no VM named")
    lab.refused(["vm", "unprotect", "nope-404"], 4, "no VM named")
    lab.refused(["vm", "protect", "bad\nname"], 2, "control characters")
    lab.refused(["vm", "protect", name, "--reason", "x" * 300], 2, "--reason")
    assert _protections() == [] and lab.job_count() == 0
