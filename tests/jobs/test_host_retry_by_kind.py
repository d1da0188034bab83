"""Transient host faults and the record following the host, for the jobs on an existing VM.

The jobs run for real (SQL row, claim, steps, Redis locks, audit) through ``run_job``; only the
host is the in-memory FakeBackend. A lost answer (the host acted, its answer never came) and a
fault before the host acted are both retried, and a repeat asks the host again only if the effect
is not there; a fault that is not transient fails at once; with retries off, a lost answer is
reconciled with the host. What the host has is read from the fake host's own state. The same
rules on the simulator, through a cut TCP proxy: tests/chaos/test_record_follows_host_kinds.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from ceso.backends.fake import FakeBackend, FakeVm
from ceso.db.models import Host, Job
from ceso.errors import AuthenticationError, CesoError, ConflictError, OperationError, TransientError
from ceso.jobs.request import JobRequest
from ceso.jobs.runner import Delivery, run_job
from ceso.jobs.store import get_job, request_cancel
from ceso.jobs.submit import submit_job
from ceso.runtime import Runtime
from tests.conftest import FAKE_HOST as HOST

# The rules are the handlers' and the runner's, not the database's: one database is enough.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _run(runtime: Runtime, kind: str, vm: str, **params: Any) -> Job:
    job, _ = submit_job(runtime, JobRequest(kind=kind, host=HOST, target=vm, params=params))
    run_job(runtime, job.id)
    with Session(runtime.engine) as session:
        return get_job(session, job.id)


def _step(job: Job, name: str) -> dict[str, Any]:
    return next(s for s in reversed(job.steps or []) if s["name"] == name)


def _snapshots(vm: FakeVm) -> list[str]:
    out, todo = [], list(vm.snapshots)
    while todo:
        node = todo.pop(0)
        out.append(node.name)
        todo += node.childSnapshotList
    return out


@dataclass
class Case:
    """One job kind: its params, the VM it starts from, the backend method of its host-changing
    step (and that step's name), and the host's state once the job did its work."""

    kind: str
    params: dict[str, Any]
    method: str
    step: str
    done: Callable[[FakeBackend], bool]
    vm: dict[str, Any] = field(default_factory=dict)
    snapshot: str | None = None  # a snapshot the VM has before the job
    checks_first: bool = True  # a repeat reads the host before asking again


CASES = {
    "power-on": Case(
        "vm.power",
        {"action": "on"},
        "power_on",
        "power on",
        lambda h: h.find("web").power_state == "poweredOn",
    ),
    "power-off": Case(
        "vm.power",
        {"action": "off"},
        "power_off",
        "power off",
        lambda h: h.find("web").power_state == "poweredOff",
        vm={"power_state": "poweredOn"},
    ),
    "shutdown": Case(
        "vm.power",
        {"action": "shutdown", "timeout_guest": 5},
        "ask_guest_shutdown",
        "guest shutdown",
        lambda h: h.find("web").power_state == "poweredOff",
        vm={"power_state": "poweredOn"},
    ),
    "delete": Case("vm.delete", {}, "destroy", "destroy", lambda h: not h.exists("web")),
    "snapshot-create": Case(
        "vm.snapshot.create",
        {"snapshot": "before-upgrade"},
        "create_snapshot",
        "create snapshot",
        lambda h: _snapshots(h.find("web")) == ["before-upgrade"],
    ),
    "snapshot-delete": Case(
        "vm.snapshot.delete",
        {"snapshot": "old"},
        "remove_snapshot",
        "remove snapshot",
        lambda h: _snapshots(h.find("web")) == [],
        snapshot="old",
    ),
    "snapshot-revert": Case(
        "vm.snapshot.revert",
        {"snapshot": "old"},
        "revert_snapshot",
        "revert",
        lambda h: h.find("web").power_state == "poweredOff",
        vm={"power_state": "poweredOn"},
        snapshot="old",
        checks_first=False,  # reverting again is reverting once
    ),
    "reconfigure": Case(
        "vm.reconfigure",
        {"cpus": 2},
        "reconfigure",
        "reconfigure",
        lambda h: h.find("web").config["config.hardware.numCPU"] == 2,
    ),
}
#: The kinds whose work is read back after a fault (ceso.operations.reconcile.READ_BACK).
RECONCILED = [
    "power-on",
    "power-off",
    "shutdown",
    "delete",
    "snapshot-create",
    "snapshot-delete",
    "reconfigure",
]


def _given(host: FakeBackend, case: Case) -> None:
    vm = host.add_vm("web", **case.vm)
    if case.snapshot:
        host.create_snapshot(vm, case.snapshot)
    host.calls.clear()


def _lost(case: Case) -> TransientError:
    return TransientError(f"{case.step}: connection lost", code="connection_lost")


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("how", ["answer lost", "not sent"])
def test_a_transient_fault_is_retried_and_a_repeat_checks_the_host_first(
    fake: tuple[Runtime, FakeBackend], name: str, how: str
) -> None:
    """The host acted and its answer was lost, or the request never reached it: either way the job
    succeeds, the host has the effect once, and the step records the failed try."""
    runtime, host = fake
    case = CASES[name]
    _given(host, case)
    if how == "answer lost":
        host.lose_answer(case.method, _lost(case))
    else:
        host.fail(case.method, _lost(case))
    job = _run(runtime, case.kind, "web", name="web", **case.params)
    assert job.state == "succeeded", (job.error_code, job.error_message, job.steps)
    assert case.done(host)
    asked = [m for m, _ in host.calls].count(case.method)
    # Asked again only when the first request did not reach the host (or the step needs no check).
    assert asked == (1 if how == "answer lost" and case.checks_first else 2)
    step = _step(job, case.step)
    assert [(r["try"], r["code"]) for r in step["retries"]] == [(1, "connection_lost")]
    assert "reconciled" not in (job.result or {})


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("login refused: wrong password"),
        OperationError("InvalidState", code="esxi_fault"),
        ConflictError("InvalidPowerState"),
    ],
    ids=["wrong-password", "invalid-state", "refused"],
)
def test_a_fault_that_is_not_transient_fails_at_once(
    fake: tuple[Runtime, FakeBackend], error: CesoError
) -> None:
    runtime, host = fake
    case = CASES["power-on"]
    _given(host, case)
    host.fail(case.method, error)
    job = _run(runtime, case.kind, "web", name="web", **case.params)
    assert (job.state, job.error_code) == ("failed", error.code)
    assert host.find("web").power_state == "poweredOff"
    assert [m for m, _ in host.calls].count(case.method) == 1
    assert "retries" not in _step(job, case.step)
    assert "reconcile with host" not in [s["name"] for s in job.steps or []]


def test_a_reset_is_not_repeated(fake: tuple[Runtime, FakeBackend]) -> None:
    """A second reset would restart the guest again, and nothing tells the first one happened."""
    runtime, host = fake
    host.add_vm("web", power_state="poweredOn")
    host.lose_answer("reset", TransientError("reset: connection lost", code="connection_lost"))
    job = _run(runtime, "vm.power", "web", name="web", action="reset")
    assert (job.state, job.error_code) == ("failed", "connection_lost")
    assert [m for m, _ in host.calls].count("reset") == 1
    assert "reconcile with host" not in [s["name"] for s in job.steps or []]


def test_the_login_is_retried(fake: tuple[Runtime, FakeBackend]) -> None:
    """Opening the host's session fails once (the host refuses connections): the first step tries again."""
    runtime, host = fake
    host.add_vm("web")
    factory, opened = runtime.backend_factory, []
    assert factory is not None

    def refuses_once(host_row: Host, route: str, record: Any) -> Any:
        opened.append(1)
        if len(opened) == 1:
            raise TransientError("login: connection refused", code="connection_lost")
        return factory(host_row, route, record)

    runtime.backend_factory = refuses_once
    job = _run(runtime, "vm.power", "web", name="web", action="on")
    assert job.state == "succeeded", (job.error_code, job.error_message)
    assert [r["code"] for r in _step(job, "check")["retries"]] == ["connection_lost"]
    assert host.find("web").power_state == "poweredOn"


def test_a_fault_that_lasts_fails_with_host_unreachable_and_leaves_the_host_as_it_was(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, host = fake
    monkeypatch.setattr(runtime.settings.jobs, "host_retry_s", 1.0)
    host.add_vm("web")

    def unreachable(vm: Any) -> None:
        host.calls.append(("destroy", {}))
        raise TransientError("destroy: connection reset", code="connection_lost")

    monkeypatch.setattr(host, "destroy", unreachable)
    job = _run(runtime, "vm.delete", "web", name="web")
    assert (job.state, job.error_code) == ("failed", "host_unreachable"), job.error_message
    tries = _step(job, "destroy")["retries"]
    assert len(tries) >= 2 and tries[-1]["wait_s"] is None
    assert [m for m, _ in host.calls].count("destroy") == len(tries)
    assert host.exists("web")
    assert _step(job, "reconcile with host")["complete"] is False  # read back: the VM is still there


@pytest.mark.parametrize("name", RECONCILED)
def test_a_lost_answer_without_retries_is_reconciled_with_the_host(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    runtime, host = fake
    monkeypatch.setattr(runtime.settings.jobs, "host_retry_s", 0.0)  # the fault stops the job
    case = CASES[name]
    _given(host, case)
    host.lose_answer(case.method, _lost(case))
    job = _run(runtime, case.kind, "web", name="web", **case.params)
    assert job.state == "succeeded", (job.error_code, job.error_message)
    assert case.done(host)
    assert (job.result or {})["reconciled"] == "connection_lost"
    assert _step(job, case.step)["state"] == "failed"
    assert _step(job, "reconcile with host")["complete"] is True


@pytest.mark.parametrize("name", RECONCILED)
def test_a_fault_before_the_host_acted_is_not_taken_for_success(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    runtime, host = fake
    monkeypatch.setattr(runtime.settings.jobs, "host_retry_s", 0.0)
    case = CASES[name]
    _given(host, case)
    host.fail(case.method, _lost(case))
    job = _run(runtime, case.kind, "web", name="web", **case.params)
    assert (job.state, job.error_code) == ("failed", "connection_lost")
    assert not case.done(host)
    assert _step(job, "reconcile with host")["complete"] is False


def test_sql_lost_as_a_power_outcome_is_written_ends_succeeded_as_the_host_says(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    import ceso.jobs.context as context

    runtime, host = fake
    host.add_vm("web")
    real = context.finish_running

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(context, "finish_running", real)
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(context, "finish_running", fails_once)
    job = _run(runtime, "vm.power", "web", name="web", action="on")
    assert job.state == "succeeded", (job.error_code, job.error_message)
    result = job.result or {}
    assert result["reconciled"] == "database_unreachable"
    assert result["power_state"] == "poweredOn" == host.find("web").power_state
    assert result["power_state_before"] == "poweredOff"


def test_retry_host_refuses_a_step_not_declared_retried(fake: tuple[Runtime, FakeBackend]) -> None:
    from ceso.jobs.context import JobContext
    from ceso.jobs.retry import retry_host
    from ceso.plans import PowerSteps

    runtime, _ = fake
    job, _ = submit_job(runtime, JobRequest(kind="host.ping", host=HOST, params={}))
    with pytest.raises(TypeError, match="reset"):
        retry_host(JobContext(runtime, job), PowerSteps.reset, lambda _try: None)


# -- a cancel while a redelivered attempt adopts its VM ----------------------------------------------
def _clone_left_unrecorded(runtime: Runtime, host: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clone whose VM is complete on the host but whose outcome was never written (SQL failed for
    the outcome and its reconciled retry); its delivery comes again. Returns the job's id."""
    import sqlalchemy as sa

    import ceso.jobs.context as context

    host.add_vm("src")
    real, failures = context.finish_running, []

    def fails_twice(*args: Any, **kwargs: Any) -> Any:
        failures.append(1)
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
        row.heartbeat_at = row.heartbeat_at - timedelta(hours=1)  # as a dead worker's
        session.add(row)
        session.commit()
    assert host.exists("copy")
    return job.id


@pytest.mark.parametrize("when", ["while adopting", "after adopting"])
def test_a_cancel_as_a_redelivery_adopts_its_vm_leaves_record_and_host_agreeing(
    fake: tuple[Runtime, FakeBackend], monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """While the redelivered attempt reads its VM back, the cancel removes the VM (``cancelled``);
    once the attempt adopted it, the cancel is too late (``succeeded``, ``cancel_too_late``)."""
    import ceso.operations.provision as provision
    from ceso.jobs.context import JobContext

    runtime, host = fake
    job_id = _clone_left_unrecorded(runtime, host, monkeypatch)
    if when == "while adopting":
        real = provision.completed_vm

        def cancelled_meanwhile(ctx: Any, ops: Any, opts: Any) -> Any:
            request_cancel(runtime.engine, job_id)
            return real(ctx, ops, opts)

        monkeypatch.setattr(provision, "completed_vm", cancelled_meanwhile)
    else:
        real_beyond = JobContext.beyond_cancel

        def cancelled_then(self: JobContext) -> None:
            real_beyond(self)
            request_cancel(runtime.engine, job_id)

        monkeypatch.setattr(JobContext, "beyond_cancel", cancelled_then)
    assert run_job(runtime, job_id) == Delivery.DONE
    with Session(runtime.engine) as session:
        done = get_job(session, job_id)
    assert done.attempts == 2
    if when == "while adopting":
        assert done.state == "cancelled", (done.error_code, done.error_message)
        assert not host.exists("copy")  # the cleanup removed the adopted VM
        assert "clean up after failure" in [s["name"] for s in done.steps or []]
    else:
        assert done.state == "succeeded", (done.error_code, done.error_message)
        assert (done.result or {})["cancel_too_late"] is True
        assert host.exists("copy") and host.find("copy").power_state == "poweredOn"
    assert [m for m, _ in host.calls].count("create_vm") == 1
