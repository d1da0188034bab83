"""Job notices: a waiter is woken by the worker's notice, and polls on without Redis."""

from __future__ import annotations

import threading
import time

import pytest

from ceso.db.engine import get_engine
from ceso.jobs.notify import OUTCOME, STEP, JobNotices, channel, notify_job
from ceso.jobs.store import claim_job, create_job, finish_job
from ceso.jobs.wait import wait_for_job
from ceso.runtime import get_runtime
from tests.conftest import closed_port

pytestmark = pytest.mark.audit_exempt  # jobs are written straight into the store, not submitted


def _job(url: str) -> str:
    engine = get_runtime().engine
    job, _ = create_job(
        engine,
        kind="host.ping",
        host="h",
        target=None,
        params={},
        actor="operator:t",
        idempotency_key=None,
        max_attempts=3,
    )
    assert get_engine(url) is not None
    return job.id


def test_a_notice_cuts_the_wait_short(ceso_env: dict[str, str], database_url: str) -> None:
    job_id = _job(database_url)
    with JobNotices(ceso_env["CESO_REDIS_URL"], job_id) as notices:
        threading.Timer(0.2, lambda: notify_job(get_runtime(), job_id)).start()
        assert notices.wait(60) is True  # False would mean the full 60 s passed without the notice


def test_notices_of_another_job_do_not_wake(ceso_env: dict[str, str], database_url: str) -> None:
    job_id, other = _job(database_url), _job(database_url)
    with JobNotices(ceso_env["CESO_REDIS_URL"], job_id) as notices:
        notify_job(get_runtime(), other)
        assert notices.wait(0.3) is False


def test_wait_for_job_returns_on_the_outcome_notice(ceso_env: dict[str, str], database_url: str) -> None:
    engine = get_runtime().engine
    job_id = _job(database_url)
    claimed = claim_job(engine, job_id=job_id, worker="w", stale_after_s=60)
    assert claimed is not None
    reads: list[str] = []

    def finish() -> None:
        finish_job(engine, job_id=job_id, attempt=claimed.attempts, state="succeeded", result={"ok": True})
        notify_job(get_runtime(), job_id)

    # The backoff alone would read the row at 0, 0.05, 0.125, ... s; the notice makes a read follow the outcome.
    threading.Timer(0.6, finish).start()
    job = wait_for_job(
        engine,
        job_id,
        timeout=60,
        on_update=lambda j: reads.append(j.state),
        redis_url=ceso_env["CESO_REDIS_URL"],
    )
    assert job.state == "succeeded" and job.result == {"ok": True}
    assert reads[-1] == "succeeded" and set(reads[:-1]) == {"running"}


def test_without_redis_the_waiter_polls(ceso_env: dict[str, str], database_url: str) -> None:
    engine = get_runtime().engine
    job_id = _job(database_url)
    unreachable = f"redis://127.0.0.1:{closed_port()}/0"
    with JobNotices(unreachable, job_id) as notices:
        assert notices.wait(0.05) is False
    claimed = claim_job(engine, job_id=job_id, worker="w", stale_after_s=60)
    assert claimed is not None
    threading.Timer(
        0.3, lambda: finish_job(engine, job_id=job_id, attempt=1, state="succeeded", result={})
    ).start()
    assert wait_for_job(engine, job_id, timeout=60, redis_url=unreachable).state == "succeeded"
    notify_job(get_runtime(), job_id)  # with the configured Redis up this is a no-op publish; never raises


def test_a_waiter_without_progress_sleeps_through_step_notices(
    ceso_env: dict[str, str], database_url: str
) -> None:
    job_id = _job(database_url)
    runtime = get_runtime()
    with JobNotices(ceso_env["CESO_REDIS_URL"], job_id) as notices:
        threading.Timer(0.05, lambda: notify_job(runtime, job_id, STEP)).start()
        assert notices.wait(0.5, progress=False) is False  # the step notice came and was let pass
        threading.Timer(0.05, lambda: notify_job(runtime, job_id, STEP)).start()
        assert notices.wait(60, progress=True) is True  # a progress display wants every step
        threading.Timer(0.05, lambda: notify_job(runtime, job_id, OUTCOME)).start()
        assert notices.wait(60, progress=False) is True
        # A worker of an older release says "changed" for everything: it still wakes the waiter.
        threading.Timer(0.05, lambda: runtime.redis.publish(channel(job_id), "changed")).start()
        assert notices.wait(60, progress=False) is True


def test_wait_for_job_without_progress_reads_the_row_on_the_outcome_not_each_step(
    ceso_env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ceso.jobs.wait as wait_module

    engine, runtime = get_runtime().engine, get_runtime()
    job_id = _job(database_url)
    claimed = claim_job(engine, job_id=job_id, worker="w", stale_after_s=60)
    assert claimed is not None
    reads: list[str] = []
    real_get_job = wait_module.get_job

    def counted(session: object, jid: str) -> object:
        job = real_get_job(session, jid)  # type: ignore[arg-type]
        reads.append(job.state)
        return job

    monkeypatch.setattr(wait_module, "get_job", counted)

    def run() -> None:
        for _ in range(30):  # a job of many quick steps
            notify_job(runtime, job_id, STEP)
            time.sleep(0.01)
        finish_job(engine, job_id=job_id, attempt=claimed.attempts, state="succeeded", result={"ok": True})
        notify_job(runtime, job_id, OUTCOME)

    threading.Thread(target=run).start()
    job = wait_for_job(engine, job_id, timeout=60, redis_url=ceso_env["CESO_REDIS_URL"])
    assert job.state == "succeeded"
    # The backoff reads at 0, 0.05, 0.125, 0.24 s...: a handful in the ~0.3 s the steps take; each step
    # notice waking the waiter would make 30 reads or more.
    assert reads[-1] == "succeeded" and len(reads) < 15, reads
