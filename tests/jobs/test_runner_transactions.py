"""The transactions of one delivery (``run_job`` in-process, no Celery, no host), on SQLite and PostgreSQL.

Each commit of a job's bookkeeping is an fsync on SQLite, so the runner groups them: the claim
commits with its ``job.claimed`` record, and a handler's return commits the last step's end, its
``job.step`` record, the outcome and the outcome's record together. These tests read back what
each committed transaction wrote, the job row and the audit records (their order and chain).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ceso.audit.jobs import submitted_event
from ceso.audit.verify import verify_chain
from ceso.errors import InvalidInputError
from ceso.jobs.context import JobContext
from ceso.jobs.runner import Delivery, run_job
from ceso.jobs.store import create_job
from ceso.operations.handlers import HANDLERS
from ceso.operations.test_sleep import run_test_sleep
from ceso.plans import Step
from ceso.runtime import Runtime, get_runtime
from tests.conftest import _clear_caches
from tests.security.helpers import audit_rows

_WRITE = re.compile(r'^\s*(?:(INSERT) INTO|(UPDATE)|(DELETE) FROM)\s+"?(\w+)', re.I)

#: The writes of a job row's fenced update, and of its outcome, as seen by :class:`Transactions`.
JOB = "UPDATE jobs"
RECORD = "INSERT audit_records"


class Transactions:
    """The writes (``"UPDATE jobs"``, ``"INSERT audit_records"``…) of each transaction committed on
    ``engine`` while in use, in order; the chain head's updates (two per record) are left out.
    ``savepoints`` counts the savepoints opened, committed or not."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.committed: list[list[str]] = []
        self._open: list[str] = []
        self.savepoints = 0

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.savepoints += statement.startswith("SAVEPOINT")
        m = _WRITE.match(statement)
        if m and m.group(4) != "audit_head":
            self._open.append(f"{next(g for g in m.groups()[:3] if g).upper()} {m.group(4)}")

    def _commit(self, _conn: Any) -> None:
        self.committed.append(self._open)
        self._open = []

    def _rollback(self, _conn: Any) -> None:
        self._open = []

    def __enter__(self) -> Transactions:
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        sa.event.listen(self.engine, "commit", self._commit)
        sa.event.listen(self.engine, "rollback", self._rollback)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)
        sa.event.remove(self.engine, "commit", self._commit)
        sa.event.remove(self.engine, "rollback", self._rollback)


@pytest.fixture
def runtime(ceso_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """This process's runtime, with a heartbeat too slow to beat (it would add commits) during a test."""
    monkeypatch.setenv("CESO_JOBS__HEARTBEAT_S", "60")
    _clear_caches()
    yield get_runtime()


def _job(runtime: Runtime, actor: str = "operator:t", steps: int = 1) -> str:
    """A queued ``test.sleep`` job with its ``job.submitted`` record (not published: run in-process)."""
    job, _ = create_job(
        runtime.engine,
        kind="test.sleep",
        host="h",
        target=None,
        params={"steps": steps},
        actor=actor,
        idempotency_key=None,
        max_attempts=3,
        audit=submitted_event,
    )
    return job.id


def _row(runtime: Runtime, job_id: str) -> dict[str, Any]:
    with runtime.engine.connect() as conn:
        row = dict(conn.execute(sa.text("SELECT * FROM jobs WHERE id = :j"), {"j": job_id}).one()._mapping)
    for name in ("steps", "result"):  # SQLite hands JSON back as text
        if isinstance(row[name], str):
            row[name] = json.loads(row[name])
    row["cancel_requested"] = bool(row["cancel_requested"])
    return row


def _records(url: str, job_id: str) -> list[dict[str, Any]]:
    return audit_rows(url, "job_id = :j", j=job_id)


def _handler(monkeypatch: pytest.MonkeyPatch, fn: Any) -> None:
    """Run ``fn(ctx)`` as the handler of ``test.sleep`` (looked up in the table when the job runs)."""
    monkeypatch.setitem(HANDLERS, "test.sleep", fn)


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("claim_fresh", [True, False])
def test_a_success_commits_the_last_step_and_the_outcome_together(
    runtime: Runtime, database_url: str, steps: int, claim_fresh: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim found no cancel request and counts as the run's first write: the first step needs
    # no check of its own while that answer is fresh (_FRESH_S), and one when the handler starts late.
    if claim_fresh:
        monkeypatch.setattr("ceso.jobs.context._FRESH_S", 3600.0)  # however slow this machine is
    else:

        def late(ctx: Any) -> Any:
            time.sleep(0.2)  # longer than _FRESH_S (0.05 s)
            return run_test_sleep(ctx)

        _handler(monkeypatch, late)
    job_id = _job(runtime, steps=steps)
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    claim = [JOB, RECORD]  # the claim with job.claimed
    first_check = [] if claim_fresh else [[JOB]]  # the cancel check before the first step, when stale
    step_starts = [[JOB]] + [[JOB, RECORD]] * (steps - 1)  # each with the previous step's end and record
    outcome = [JOB, RECORD, JOB, RECORD]  # the last step's end and record, the outcome and its record
    assert tx.committed == [claim, *first_check, *step_starts, outcome]
    assert tx.savepoints == 2  # the claim's actor lookup and its record; records at the steps need none
    # was steps + 5: claim and its record apart, a check before the first step, last step and outcome apart
    assert len(tx.committed) == steps + (2 if claim_fresh else 3)

    row = _row(runtime, job_id)
    assert (row["state"], row["progress"], row["error_code"], row["attempts"]) == ("succeeded", 100, None, 1)
    assert row["finished_at"] is not None and row["current_step"] == f"sleep {steps}/{steps}"
    rows = _records(database_url, job_id)
    assert [r["event"] for r in rows] == [
        "job.submitted",
        "job.claimed",
        *["job.step"] * steps,
        "job.succeeded",
    ]
    claimed = rows[1]
    assert claimed["details"] == {"worker": row["worker"], "attempt": 1}
    assert (claimed["source"], claimed["mode"]) == ("worker", runtime.settings.security.operator_mode)
    assert [r["details"]["state"] for r in rows[2:-1]] == ["succeeded"] * steps
    assert rows[-1]["details"]["result"] == {"slept_s": 0.0}
    assert verify_chain(runtime.engine).ok


def test_a_step_that_changes_nothing_is_written_with_the_next_write(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``changes_host=False``: no commit for the step's start; its whole record goes with the next
    write of the row (here the next step's start). A failing one is written at once."""
    seen: list[list[str]] = []

    def handler(ctx: JobContext) -> dict[str, Any]:
        with ctx.step(Step("look", ""), changes_host=False):
            pass
        with ctx.step(Step("act", "")):
            seen.append(
                [s["name"] for s in _row(runtime, ctx.job.id)["steps"]]
            )  # committed before "act" runs
        return {}

    monkeypatch.setattr("ceso.jobs.context._FRESH_S", 3600.0)  # the claim answers the first cancel check
    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    # The claim; "act"'s start with "look"'s whole record; "act"'s end with the outcome.
    assert tx.committed == [[JOB, RECORD], [JOB, RECORD], [JOB, RECORD, JOB, RECORD]]
    assert seen == [["look", "act"]]
    row = _row(runtime, job_id)
    assert [(s["name"], s["state"]) for s in row["steps"]] == [("look", "succeeded"), ("act", "succeeded")]
    assert [r["event"] for r in _records(database_url, job_id)][2:] == [
        "job.step",
        "job.step",
        "job.succeeded",
    ]

    def failing(ctx: JobContext) -> dict[str, Any]:
        with ctx.step(Step("look", ""), changes_host=False):
            raise InvalidInputError("nothing to see")
        return {}

    _handler(monkeypatch, failing)
    failed_id = _job(runtime)
    assert run_job(runtime, failed_id) is Delivery.DONE
    row = _row(runtime, failed_id)
    assert (row["state"], row["error_code"]) == ("failed", "invalid_input")
    assert [(s["name"], s["state"]) for s in row["steps"]] == [("look", "failed")]
    step_records = [r for r in _records(database_url, failed_id) if r["event"] == "job.step"]
    assert [r["details"]["state"] for r in step_records] == ["failed"]
    assert verify_chain(runtime.engine).ok


def test_a_cancel_requested_while_the_last_step_runs_still_cancels(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As before the merge: the handler returned, but the cancel came before the outcome was written."""
    from ceso.jobs.cancel import cancel_job

    def handler(ctx: JobContext) -> dict[str, Any]:
        with ctx.step(Step("last", ""), progress=50):
            cancel_job(ctx.runtime, ctx.job.id)
        return {"made": "something"}

    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    # The last step's end and record, then the outcome (cancelled) and its record: one transaction.
    assert tx.committed[-1] == [JOB, RECORD, JOB, RECORD]

    row = _row(runtime, job_id)
    assert (row["state"], row["error_code"], row["cancel_requested"]) == ("cancelled", "job_cancelled", True)
    assert row["error_message"] == f"job {job_id} was cancelled" and row["result"] is None
    assert row["progress"] == 50  # the step's; 100 is a success's
    rows = _records(database_url, job_id)
    assert [(r["event"], r["outcome"]) for r in rows] == [
        ("job.submitted", "ok"),
        ("job.claimed", "ok"),
        ("job.cancel_requested", "ok"),
        ("job.step", "ok"),  # the step itself ended well
        ("job.cancelled", "cancelled"),
    ]
    assert rows[-1]["details"]["error"]["code"] == "job_cancelled"
    assert verify_chain(runtime.engine).ok


def test_a_claim_lost_during_the_last_step_writes_no_outcome(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another delivery took the job over (new fencing token): this run writes neither the step's end
    nor an outcome to the row; the step's record is still appended, on its own."""

    def handler(ctx: JobContext) -> dict[str, Any]:
        with (
            ctx.step(Step("last", "")),
            ctx.runtime.engine.begin() as conn,
        ):  # meanwhile another delivery re-claims
            conn.execute(
                sa.text("UPDATE jobs SET attempts = attempts + 1, worker = 'other' WHERE id = :j"),
                {"j": ctx.job.id},
            )
        return {"made": "something"}

    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    assert tx.committed[-1] == [RECORD]  # the failed final transaction committed nothing

    row = _row(runtime, job_id)
    assert (row["state"], row["attempts"], row["worker"]) == ("running", 2, "other")
    assert row["result"] is None and row["finished_at"] is None and row["error_code"] is None
    assert [(s["name"], s["state"]) for s in row["steps"]] == [("last", "running")]  # its start only
    rows = _records(database_url, job_id)
    assert [r["event"] for r in rows] == ["job.submitted", "job.claimed", "job.step"]
    assert verify_chain(runtime.engine).ok


def test_an_agents_claim_commits_with_its_record_and_mode(runtime: Runtime, database_url: str) -> None:
    from ceso.security.agents import add_agent

    add_agent(runtime, "claimer", "standard")
    job_id = _job(runtime, actor="agent:claimer")
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    assert tx.committed[0] == [JOB, RECORD]
    assert _row(runtime, job_id)["state"] == "succeeded"
    rows = _records(database_url, job_id)
    assert [(r["event"], r["actor"], r["mode"]) for r in rows[:2]] == [
        ("job.submitted", "agent:claimer", None),
        ("job.claimed", "agent:claimer", "standard"),  # resolved in the claim's transaction
    ]
    assert rows[-1]["event"] == "job.succeeded"


def test_a_step_the_heartbeat_writes_is_audited_with_the_actors_mode(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that ends with nothing written after it for a beat is written by the heartbeat thread;
    its record carries the agent's mode as the others do (the thread runs in the job's context)."""
    from ceso.security.agents import add_agent

    add_agent(runtime, "beater", "standard")
    monkeypatch.setenv("CESO_JOBS__HEARTBEAT_S", "0.1")
    _clear_caches()
    runtime = get_runtime()
    flushed = []

    def handler(ctx: JobContext) -> dict[str, Any]:
        with ctx.step(Step("look", "")):
            pass
        deadline = time.monotonic() + 30
        while ctx._deferred_audits and time.monotonic() < deadline:  # until a beat has written it
            time.sleep(0.05)
        flushed.append(not ctx._deferred_audits)
        return {}

    _handler(monkeypatch, handler)
    job_id = _job(runtime, actor="agent:beater")
    assert run_job(runtime, job_id) is Delivery.DONE
    assert flushed == [True]
    rows = _records(database_url, job_id)
    assert [(r["event"], r["mode"]) for r in rows[1:]] == [
        ("job.claimed", "standard"),
        ("job.step", "standard"),
        ("job.succeeded", "standard"),
    ]


@pytest.mark.parametrize("actor", ["agent:gone", "agent:never-registered"])
def test_a_refused_actor_is_still_audited_and_its_job_failed(
    runtime: Runtime, database_url: str, actor: str
) -> None:
    from ceso.security.agents import add_agent, revoke_agent

    add_agent(runtime, "gone", "standard")
    revoke_agent(runtime, "gone")
    job_id = _job(runtime, actor=actor)
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    # The claim with its record; the refusal's record; the outcome with its record (as before).
    assert tx.committed == [[JOB, RECORD], [RECORD], [JOB, RECORD]]

    row = _row(runtime, job_id)
    assert (row["state"], row["error_code"], row["steps"]) == ("failed", "not_permitted", [])
    rows = _records(database_url, job_id)
    assert [(r["event"], r["outcome"], r["mode"]) for r in rows] == [
        ("job.submitted", "ok", None),
        ("job.claimed", "ok", None),  # no principal to take a mode from
        ("job.refused", "refused", None),
        ("job.failed", "failed", None),
    ]
    assert verify_chain(runtime.engine).ok


def test_a_failed_lookup_in_the_claim_still_commits_the_claim_then_records_it_apart(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQL error while resolving the actor in the claim's transaction (rolled back to its savepoint,
    so PostgreSQL's transaction stays usable) leaves the claim committed; the worker then resolves and
    audits as it did before the merge."""
    from ceso.security.principals import resolve_actor as real

    calls: list[str] = []

    def flaky(bind: Any, settings: Any, actor: str) -> Any:
        calls.append(type(bind).__name__)
        if isinstance(bind, sa.Connection):
            bind.execute(sa.text("SELECT * FROM no_such_table"))
        return real(bind, settings, actor)

    monkeypatch.setattr("ceso.security.worker.resolve_actor", flaky)
    job_id = _job(runtime)
    with Transactions(runtime.engine) as tx:
        assert run_job(runtime, job_id) is Delivery.DONE
    assert calls == ["Connection", "Engine"]
    assert tx.committed[:2] == [[JOB], [RECORD]]  # the claim alone, then its record alone
    assert _row(runtime, job_id)["state"] == "succeeded"
    rows = _records(database_url, job_id)
    assert [r["event"] for r in rows] == ["job.submitted", "job.claimed", "job.step", "job.succeeded"]
    assert rows[1]["mode"] == runtime.settings.security.operator_mode
    assert verify_chain(runtime.engine).ok


@pytest.mark.parametrize("failures", [1, 99])
def test_a_failing_record_costs_neither_the_write_nor_the_outcome(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    """Records are appended without a savepoint each; when one fails (a real SQL error, which aborts a
    PostgreSQL transaction), the write is made again with each record guarded. Failing once: every
    record is there. Failing always: only that record is lost, logged; the job and the chain are whole."""
    from ceso.audit import store as audit_store

    real = audit_store._append_on
    left = {"n": failures}

    def flaky(conn: sa.Connection, fields: dict[str, Any]) -> int:
        if fields["event"] == "job.step" and fields["details"].get("name") == "sleep 1/2" and left["n"] > 0:
            left["n"] -= 1
            conn.execute(sa.text("SELECT no_such_column FROM audit_head"))
        return real(conn, fields)

    monkeypatch.setattr(audit_store, "_append_on", flaky)
    job_id = _job(runtime, steps=2)
    assert run_job(runtime, job_id) is Delivery.DONE

    row = _row(runtime, job_id)
    assert (row["state"], row["progress"]) == ("succeeded", 100)
    assert [(s["name"], s["state"]) for s in row["steps"]] == [
        ("sleep 1/2", "succeeded"),
        ("sleep 2/2", "succeeded"),
    ]
    steps = [r["details"]["name"] for r in _records(database_url, job_id) if r["event"] == "job.step"]
    assert steps == (["sleep 1/2", "sleep 2/2"] if failures == 1 else ["sleep 2/2"])
    assert [r["event"] for r in _records(database_url, job_id)][-1] == "job.succeeded"
    assert verify_chain(runtime.engine).ok
