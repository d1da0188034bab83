"""Flower (ops/flower.md) started against the test Redis shows the test's worker and its task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.flower import flower


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Flower reads Redis only
def test_flower_shows_the_worker_and_its_tasks(
    cli: Cli, registered_host: str, start_worker: Any, ceso_env: dict[str, str], tmp_path: Path
) -> None:
    worker = start_worker(registered_host)
    with flower(ceso_env, tmp_path) as fl:
        # Each inspect call of a refresh may time out on a busy machine: wait for a complete answer.
        # Waiting for it before the job also gives Flower's event receiver time to connect: a task
        # whose "received" event it missed shows up without a name.
        workers = fl.until(
            lambda: {k: v for k, v in fl.get("/api/workers?refresh=1").items() if v.get("active_queues")},
            "no worker answered /api/workers with its queues",
        )
        result = cli("--json", "host", "ping", registered_host, "--timeout", "60")
        assert result.exit_code == 0, result.stderr
        job_id = result.json()["id"]

        tasks = fl.until(
            lambda: {
                k: v for k, v in fl.get("/api/tasks").items() if v.get("state") == "SUCCESS" and v.get("name")
            },
            f"task {job_id} never showed as SUCCESS with its name",
        )
        task = tasks[job_id]  # the Celery task id is the job id
        assert task["name"] == "ceso.run_job"
        assert job_id in task["args"]  # the only argument
        assert task["worker"].startswith(f"ceso-{registered_host}")

        (name,) = workers
        assert name == task["worker"]
        assert f"esxi.{registered_host}" in [q["name"] for q in workers[name]["active_queues"]]
        assert worker.proc.poll() is None

        # Flower's own metrics use the long-job buckets.
        metrics = fl.get("/metrics")
        assert 'flower_task_runtime_seconds_bucket{le="600.0",task="ceso.run_job"' in metrics
