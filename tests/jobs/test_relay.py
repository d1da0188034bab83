"""The outbox relay (ceso.jobs.relay) against real SQL and Redis: what it publishes again, what it
leaves alone, and that releasing a dead process's claim never gives a job two live claims."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ceso.constants import queue_for_host
from ceso.db.types import utcnow
from ceso.jobs.relay import relay_jobs, release_dead_claims, waiting_in_queues
from ceso.jobs.request import JobRequest
from ceso.jobs.store import claim_job
from ceso.jobs.submit import submit_job
from ceso.runtime import get_runtime


def _job(host: str) -> str:
    job, _ = submit_job(get_runtime(), JobRequest(kind="test.sleep", host=host, params={"seconds": 0}))
    return job.id


def _set(job_id: str, **values: Any) -> None:
    from ceso.db.models import Job

    with get_runtime().engine.begin() as conn:
        conn.execute(sa.update(Job).where(Job.id == job_id).values(**values))  # type: ignore[arg-type]


def _queued_ids(host: str) -> list[str]:
    found = waiting_in_queues(get_runtime().redis, [host])[host]
    assert found is not None
    return sorted(found)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _drain(host: str) -> None:
    get_runtime().redis.delete(queue_for_host(host))


def test_a_queued_job_missing_from_its_queue_is_published_again_once(
    ceso_env: dict[str, str], registered_host: str
) -> None:
    host = registered_host
    waiting, lost = _job(host), _job(host)
    assert _queued_ids(host) == sorted([waiting, lost])
    runtime = get_runtime()
    old = utcnow() - timedelta(seconds=runtime.settings.jobs.republish_after_s + 1)
    _set(waiting, published_at=old)
    _set(lost, published_at=old)
    assert relay_jobs(runtime, [host]) == []  # both messages still wait: nothing to do
    _drain(host)  # Redis restarted empty
    published = relay_jobs(runtime, [host])
    assert sorted(published) == sorted([waiting, lost])
    assert _queued_ids(host) == sorted([waiting, lost])
    assert relay_jobs(runtime, [host]) == []  # published just now, and waiting again


@pytest.mark.audit_exempt  # the ended and running states are written straight into the rows
def test_a_recently_published_or_cancelled_job_is_left_alone(
    ceso_env: dict[str, str], registered_host: str
) -> None:
    host = registered_host
    recent = _job(host)
    cancelled = _job(host)
    _set(cancelled, state="cancelled", published_at=utcnow() - timedelta(hours=1))
    _drain(host)
    assert relay_jobs(get_runtime(), [host]) == []
    assert _queued_ids(host) == []
    assert recent  # queued, published a moment ago: its worker may be about to claim it


@pytest.mark.audit_exempt
def test_a_dead_local_claim_is_released_and_claimed_once(
    ceso_env: dict[str, str], registered_host: str
) -> None:
    runtime = get_runtime()
    jobs = runtime.settings.jobs
    host = registered_host
    old = utcnow() - timedelta(seconds=3 * jobs.heartbeat_s)
    dead, alive, remote, fresh = (_job(host) for _ in range(4))
    me = socket.gethostname()
    for job_id, worker, beat in (
        (dead, f"{me}:{_dead_pid()}", old),
        (alive, f"{me}:{os.getpid()}", old),  # a live process: its claim stays
        (remote, f"another-machine:{_dead_pid()}", old),  # not this machine's to judge
        (fresh, f"{me}:{_dead_pid()}", utcnow() + timedelta(seconds=60)),  # beat within two beats
    ):
        _set(job_id, state="running", attempts=1, worker=worker, heartbeat_at=beat)
    released = release_dead_claims(
        runtime.engine, hosts=[host], heartbeat_s=jobs.heartbeat_s, stale_after_s=jobs.stale_after_s
    )
    assert released == [dead]
    # The shipped stale period is not needed: the released claim is claimable now, by one delivery.
    first = claim_job(runtime.engine, job_id=dead, worker="w:1", stale_after_s=jobs.stale_after_s)
    second = claim_job(runtime.engine, job_id=dead, worker="w:2", stale_after_s=jobs.stale_after_s)
    assert first is not None and first.attempts == 2
    assert second is None
    for job_id in (alive, remote, fresh):
        assert (
            claim_job(runtime.engine, job_id=job_id, worker="w:3", stale_after_s=jobs.stale_after_s) is None
        )
