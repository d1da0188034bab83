"""run_job when PostgreSQL cannot be reached (through a proxy that is cut): the delivery is to come
again (RETRY), never acknowledged as done, and nothing is written; once SQL answers the same job
runs to its outcome."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ceso.jobs.request import JobRequest
from ceso.jobs.runner import Delivery, run_job
from ceso.jobs.submit import submit_job
from ceso.runtime import get_runtime
from tests.conftest import closed_port
from tests.support.chaos import job_rows, repoint
from tests.support.proxy import FaultProxy


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_delivery_that_cannot_reach_sql_is_retried_not_done(
    ceso_env: dict[str, str], registered_host: str
) -> None:
    direct = ceso_env["CESO_DATABASE_URL"]
    job, _ = submit_job(
        get_runtime(), JobRequest(kind="test.sleep", host=registered_host, params={"seconds": 0})
    )
    parts = urlsplit(direct)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        repoint(
            ceso_env,
            CESO_DATABASE_URL=parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl(),
        )
        runtime = get_runtime()
        assert runtime.engine is not None  # connected and schema checked before the outage
        proxy.cut()
        assert run_job(runtime, job.id) is Delivery.RETRY
        assert job_rows(direct, [job.id])[job.id]["state"] == "queued"  # nothing claimed, nothing lost
        proxy.restore()
        assert run_job(runtime, job.id) is Delivery.DONE
        row = job_rows(direct, [job.id])[job.id]
        assert (row["state"], row["attempts"]) == ("succeeded", 1)
    finally:
        proxy.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_process_whose_first_sql_use_fails_retries_too(ceso_env: dict[str, str]) -> None:
    """The schema check of a new process's first use wraps the connection error in its own."""
    repoint(ceso_env, CESO_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/ceso")
    assert run_job(get_runtime(), "00000000-0000-0000-0000-000000000001") is Delivery.RETRY
