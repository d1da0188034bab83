"""Audit bookkeeping never breaks a job: with the audit table gone, the job still runs to its outcome."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ceso.jobs.request import JobRequest
from ceso.jobs.runner import Delivery, run_job
from ceso.jobs.submit import submit_job
from tests.conftest import Cli
from tests.security.helpers import audit_rows


def _rename(url: str, old: str, new: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))
    engine.dispose()


@pytest.mark.audit_exempt  # the job's claim and steps are deliberately not audited
def test_a_job_runs_when_its_audit_records_cannot_be_written(
    cli: Cli, registered_host: str, ceso_env: dict[str, str]
) -> None:
    from ceso.runtime import get_runtime

    runtime = get_runtime()
    url = ceso_env["CESO_DATABASE_URL"]
    job, _ = submit_job(runtime, JobRequest(kind="test.sleep", host=registered_host, params={"steps": 2}))
    _rename(url, "audit_records", "audit_records_away")
    try:
        assert run_job(runtime, job.id) is Delivery.DONE  # in-process: the runner is Celery-free
    finally:
        _rename(url, "audit_records_away", "audit_records")
    body = cli("--json", "job", "status", job.id).json()
    assert body["state"] == "succeeded" and len(body["steps"]) == 2
    assert [r["event"] for r in audit_rows(url, "job_id = :j", j=job.id)] == ["job.submitted"]


def test_the_outcome_is_audited_with_the_outcome(
    cli: Cli, registered_host: str, ceso_env: dict[str, str]
) -> None:
    from ceso.runtime import get_runtime

    runtime = get_runtime()
    job, _ = submit_job(
        runtime, JobRequest(kind="test.sleep", host=registered_host, params={"steps": 1, "fail": "no"})
    )
    assert run_job(runtime, job.id) is Delivery.DONE
    rows = audit_rows(ceso_env["CESO_DATABASE_URL"], "job_id = :j", j=job.id)
    assert [r["event"] for r in rows] == ["job.submitted", "job.claimed", "job.step", "job.failed"]
    assert rows[-1]["details"]["error"] == {"code": "requested_failure", "message": "no"}
    assert rows[-1]["source"] == "worker" and rows[-1]["actor"].startswith("operator")


def test_scheduled_jobs_are_the_beats(cli: Cli, registered_host: str, ceso_env: dict[str, str]) -> None:
    """Celery beat's schedules submit as actor ``beat`` (operator mode) with source ``beat``."""
    from ceso.runtime import get_runtime
    from ceso.security.caller import Caller, bound
    from ceso.security.principals import operator_principal

    runtime = get_runtime()
    with bound(Caller(operator_principal(runtime.settings, "beat"), source="beat")):
        job, _ = submit_job(runtime, JobRequest(kind="test.sleep", host=registered_host, params={"steps": 1}))
    assert job.actor == "beat"
    assert run_job(runtime, job.id) is Delivery.DONE
    rows = audit_rows(ceso_env["CESO_DATABASE_URL"], "job_id = :j", j=job.id)
    assert [(r["event"], r["actor"], r["source"]) for r in rows] == [
        ("job.submitted", "beat", "beat"),
        ("job.claimed", "beat", "worker"),
        ("job.step", "beat", "worker"),
        ("job.succeeded", "beat", "worker"),
    ]
