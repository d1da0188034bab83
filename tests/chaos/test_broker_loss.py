"""Redis lost under running workers: a private redis-server (no persistence) is killed and started
again while ``vm create`` jobs run and wait. No job is lost (the outbox relay publishes again what
the restart dropped), each VM exists once, and a worker that cannot go on exits non-zero so its
supervisor restarts it (``Restart=on-failure``)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.chaos import (
    assert_record_matches_host,
    assert_vms_exactly_once,
    orphan_dirs,
    repoint,
    wait_terminal,
)
from tests.support.redis_server import PrivateRedis
from tests.vm.conftest import TemplateBed

#: Runs per case; CESO_CHAOS_REPEAT raises it for a longer soak.
REPEAT = int(os.environ.get("CESO_CHAOS_REPEAT", "2"))
#: The relay of the test's workers: a pass a second, a queued job due again 3 s after its publish.
RELAY = {"CESO_JOBS__RELAY_INTERVAL_S": "1", "CESO_JOBS__REPUBLISH_AFTER_S": "3"}

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def broker(
    request: pytest.FixtureRequest, ceso_env: dict[str, str], tmp_path: Path
) -> Iterator[PrivateRedis]:
    """A private Redis for this test's installation (set up before ``bed`` starts its worker);
    persistent (append-only file) when the test's parameter says so."""
    server = PrivateRedis(tmp_path / "redis", persistent=getattr(request, "param", False))
    repoint(ceso_env, CESO_REDIS_URL=server.url, **RELAY)
    yield server
    server.stop()


def _create(cli: Cli, bed: TemplateBed, name: str) -> str:
    result = cli("--json", "vm", "create", name, "--template", bed.template, "--no-wait")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["id"])


def _wait_running(url: str, ids: list[str], timeout: float = 60) -> None:
    from tests.support.chaos import job_rows

    deadline = time.monotonic() + timeout
    while not any(r["state"] == "running" for r in job_rows(url, ids).values()):
        assert time.monotonic() < deadline, "no job started"
        time.sleep(0.1)


def test_redis_restart_with_one_unacknowledged_message(
    cli: Cli, broker: PrivateRedis, bed: TemplateBed, ceso_env: dict[str, str], start_worker: Any
) -> None:
    """A job runs (its message unacknowledged) while Redis restarts empty: the job ends, and the
    worker takes new work afterwards (a create whose VM is then on the host). The worker is meant
    to stay up (workers/consumer.py); should Celery still give up ("Unrecoverable error"), the
    worker must exit non-zero, and the test restarts it as systemd would. Both are counted."""
    from ceso.jobs.request import JobRequest
    from ceso.jobs.submit import submit_job
    from ceso.runtime import get_runtime

    url = ceso_env["CESO_DATABASE_URL"]
    worker, alive, restarted = bed.worker, 0, 0
    for _ in range(REPEAT):
        job, _created = submit_job(
            get_runtime(), JobRequest(kind="test.sleep", host=bed.host, params={"seconds": 4, "steps": 8})
        )
        _wait_running(url, [job.id])
        broker.restart(down_s=3)
        time.sleep(3)  # past Celery's first reconnection attempt
        if worker.proc.poll() is not None:
            assert worker.proc.returncode != 0, worker.output()[-3000:]  # else systemd would not restart it
            assert "Unrecoverable error" in worker.output()
            worker, restarted = start_worker(bed.host), restarted + 1
        else:
            alive += 1
        assert wait_terminal(url, [job.id], timeout=60)[job.id]["state"] == "succeeded"
        name = unique("after")
        after = _create(cli, bed, name)
        assert wait_terminal(url, [after], timeout=60)[after]["state"] == "succeeded"
        assert_vms_exactly_once(bed.si, bed.datastore_dir, [name])
    print(
        f"\nRedis restart with one unacknowledged message: {REPEAT} runs, worker alive {alive}, "
        f"exited non-zero and restarted {restarted}, exited 0: 0"
    )


@pytest.mark.parametrize("broker", [False, True], ids=["no-persistence", "aof"], indirect=True)
def test_redis_restart_loses_no_queued_job(
    cli: Cli, broker: PrivateRedis, bed: TemplateBed, ceso_env: dict[str, str]
) -> None:
    """Creates published and waiting in the queue when Redis is killed and started again. Without
    persistence their messages are gone and their rows say queued: the relay publishes them again.
    With an append-only file they are still there (but for the last second's writes), and the
    relay must not add duplicates. Either way each VM is made once."""
    url = ceso_env["CESO_DATABASE_URL"]
    total = 0
    for run in range(REPEAT):
        prefix = unique(f"bl{run}")
        os.kill(bed.worker.proc.pid, signal.SIGSTOP)  # the messages wait in Redis, unread
        try:
            names = {_create(cli, bed, name): name for name in (f"{prefix}-{i}" for i in range(4))}
            broker.restart(down_s=1)
        finally:
            os.kill(bed.worker.proc.pid, signal.SIGCONT)
        rows = wait_terminal(url, list(names), timeout=90)  # none lost
        assert {i: r["state"] for i, r in rows.items()} == dict.fromkeys(names, "succeeded"), rows
        assert_record_matches_host(bed.si, bed.datastore_dir, rows, names)
        assert orphan_dirs(bed.si, bed.datastore_dir, prefix) == []
        assert bed.worker.proc.poll() is None, bed.worker.output()[-3000:]
        total += len(names)
    kind = "with an append-only file" if broker.persistent else "without persistence"
    print(f"\nRedis restart {kind}, queued creates: {REPEAT} runs, {total} jobs, 0 lost")


def test_redis_back_read_only_stops_the_worker_with_a_failure_status(
    cli: Cli, broker: PrivateRedis, bed: TemplateBed, ceso_env: dict[str, str], start_worker: Any
) -> None:
    """Redis comes back as a replica of nothing (writes refused): Celery gives up ("Unrecoverable
    error"); the worker must say so in its status, or systemd would not restart it. Restarted
    against a working Redis, it finishes the job and takes new work."""
    from ceso.jobs.request import JobRequest
    from ceso.jobs.submit import submit_job
    from ceso.runtime import get_runtime

    url = ceso_env["CESO_DATABASE_URL"]
    job, _created = submit_job(
        get_runtime(), JobRequest(kind="test.sleep", host=bed.host, params={"seconds": 3, "steps": 6})
    )
    _wait_running(url, [job.id])
    broker.restart(down_s=1, read_only=True)
    deadline = time.monotonic() + 60
    while bed.worker.proc.poll() is None:
        assert time.monotonic() < deadline, "the worker neither failed nor went on"
        time.sleep(0.2)
    assert bed.worker.proc.returncode != 0, bed.worker.output()[-3000:]
    assert "Unrecoverable error" in bed.worker.output()
    broker.restart(down_s=0)  # a primary again, and empty: what the supervisor's restart finds
    start_worker(bed.host)
    assert wait_terminal(url, [job.id], timeout=60)[job.id]["state"] == "succeeded"
    name = unique("after")
    after = _create(cli, bed, name)
    assert wait_terminal(url, [after], timeout=60)[after]["state"] == "succeeded"
    assert_vms_exactly_once(bed.si, bed.datastore_dir, [name])
