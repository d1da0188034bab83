"""Jobs through real Redis and a real `ceso worker` process, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, closed_port


def _job_rows(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM jobs ORDER BY created_at"))]
    engine.dispose()
    return rows


def _submit(kind: str, host: str, **kw: Any) -> str:
    from ceso.jobs.request import JobRequest
    from ceso.jobs.submit import submit_job
    from ceso.runtime import get_runtime

    job, _ = submit_job(get_runtime(), JobRequest(kind=kind, host=host, **kw))
    return job.id


def test_host_ping_runs_on_the_hosts_worker(
    cli: Cli, registered_host: str, start_worker: Any, ceso_env: dict[str, str]
) -> None:
    start_worker(registered_host)
    result = cli("--json", "host", "ping", registered_host, "--timeout", "60")
    assert result.exit_code == 0, result.stdout + result.stderr
    job = result.json()
    assert job["state"] == "succeeded"
    assert job["kind"] == "host.ping"
    assert job["progress"] == 100
    assert job["result"]["host_time"]
    assert [s["name"] for s in job["steps"]] == ["login", "read host time"]
    assert all(s["state"] == "succeeded" for s in job["steps"])

    (row,) = _job_rows(ceso_env["CESO_DATABASE_URL"])
    assert row["id"] == job["id"]
    assert row["state"] == "succeeded"
    assert row["attempts"] == 1
    assert row["started_at"] is not None and row["finished_at"] is not None


def test_no_wait_then_job_wait_and_status(cli: Cli, registered_host: str, start_worker: Any) -> None:
    queued = cli("--json", "host", "ping", registered_host, "--no-wait")
    assert queued.exit_code == 0, queued.stderr
    job_id = queued.json()["id"]
    assert queued.json()["state"] == "queued"
    start_worker(registered_host)
    waited = cli("--json", "job", "wait", job_id, "--timeout", "60")
    assert waited.exit_code == 0, waited.stderr
    assert waited.json()["state"] == "succeeded"
    status = cli("--json", "job", "status", job_id)
    assert status.json()["state"] == "succeeded"
    listed = cli("--json", "job", "list", "--host", registered_host, "--state", "succeeded")
    assert [j["id"] for j in listed.json()] == [job_id]


def test_idempotency_key_yields_one_job_even_concurrently(
    cli: Cli, registered_host: str, ceso_env: dict[str, str]
) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            ids.append(
                _submit(
                    "host.ping", registered_host, params={"name": registered_host}, idempotency_key="same-key"
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 1
    again = cli("--json", "host", "ping", registered_host, "--no-wait", "--idempotency-key", "same-key")
    assert again.json()["id"] == ids[0]
    assert len(_job_rows(ceso_env["CESO_DATABASE_URL"])) == 1


def test_cancel_running_job_stops_between_steps(cli: Cli, registered_host: str, start_worker: Any) -> None:
    start_worker(registered_host)
    job_id = _submit("test.sleep", registered_host, params={"seconds": 20, "steps": 40})
    deadline = time.monotonic() + 30
    # Wait for the first step, not just the claim: a cancel landing between the claim and the first
    # step (the worker re-checks the actor and audits the claim there) rightly stops it with no step.
    while not cli("--json", "job", "status", job_id).json()["steps"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = cli("--json", "job", "cancel", job_id)
    assert cancelled.exit_code == 0
    waited = cli("--json", "job", "wait", job_id, "--timeout", "30")
    assert waited.exit_code == 1
    body = waited.json()
    assert body["state"] == "cancelled"
    assert 0 < len(body["steps"]) < 40


def test_cancel_queued_job_never_runs(cli: Cli, registered_host: str, start_worker: Any) -> None:
    job_id = _submit("test.sleep", registered_host, params={"seconds": 0})
    assert cli("--json", "job", "cancel", job_id).json()["state"] == "cancelled"
    start_worker(registered_host)
    time.sleep(1.5)
    status = cli("--json", "job", "status", job_id).json()
    assert status["state"] == "cancelled"
    assert status["attempts"] == 0


def test_failed_job_exits_non_zero_with_its_error(cli: Cli, registered_host: str, start_worker: Any) -> None:
    start_worker(registered_host)
    job_id = _submit("test.sleep", registered_host, params={"seconds": 0, "fail": "boom on purpose"})
    waited = cli("--json", "job", "wait", job_id, "--timeout", "60")
    assert waited.exit_code == 1
    assert waited.json()["error"] == {"code": "requested_failure", "message": "boom on purpose"}
    human = cli("job", "wait", job_id)
    assert human.exit_code == 1
    assert "failed" in human.stderr


def test_job_survives_a_killed_worker(
    cli: Cli, registered_host: str, start_worker: Any, ceso_env: dict[str, str]
) -> None:
    first = start_worker(registered_host)
    job_id = _submit("test.sleep", registered_host, params={"seconds": 4, "steps": 8})
    deadline = time.monotonic() + 30
    while cli("--json", "job", "status", job_id).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.kill()  # SIGKILL to the whole worker: no ack, no cleanup
    assert cli("--json", "job", "status", job_id).json()["state"] == "running"
    start_worker(registered_host)
    waited = cli("--json", "job", "wait", job_id, "--timeout", "90")
    assert waited.exit_code == 0, waited.stdout
    assert waited.json()["state"] == "succeeded"
    assert waited.json()["attempts"] == 2


def test_unpublished_job_is_published_when_a_worker_starts(
    cli: Cli,
    registered_host: str,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    ceso_env: dict[str, str],
) -> None:
    broken = cli.env | {"CESO_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    result = Cli(broken)("--json", "host", "ping", registered_host, "--no-wait", subprocess_=True)
    assert result.exit_code == 1
    assert result.json()["error"]["code"] == "broker_unreachable"
    (row,) = _job_rows(ceso_env["CESO_DATABASE_URL"])
    assert row["state"] == "queued" and row["published_at"] is None
    start_worker(registered_host)
    waited = cli("--json", "job", "wait", row["id"], "--timeout", "60")
    assert waited.json()["state"] == "succeeded"


def test_bad_job_ids(cli: Cli) -> None:
    bad = cli("--json", "job", "status", "not-a-uuid")
    assert bad.exit_code == 2
    assert "invalid job id" in bad.json()["error"]["message"]
    missing = cli("job", "status", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 4
    assert missing.stderr.startswith("error: no job")
