"""Flower (ops/flower.md) started against the test Redis shows the test's worker and its task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.services import free_port

#: The buckets ops/flower.md recommends: edges on the success criteria, up to the hard time limit.
BUCKETS = "1,5,10,30,60,90,120,300,600,900,1800,3600"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    return json.loads(body) if body.startswith(("{", "[")) else body


def _until(fn: Any, what: str, log: Path, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except (urllib.error.URLError, OSError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"flower: {what} within {timeout}s; log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Flower reads Redis only
def test_flower_shows_the_worker_and_its_tasks(
    cli: Cli, registered_host: str, start_worker: Any, ceso_env: dict[str, str], tmp_path: Path
) -> None:
    worker = start_worker(registered_host)
    port = free_port()
    log = tmp_path / "flower.log"
    celery = Path(sys.executable).with_name("celery")
    env = {
        **os.environ,
        **ceso_env,  # CESO_REDIS_URL: the test's Redis DB, read by workers.app
        "FLOWER_UNAUTHENTICATED_API": "true",
        "FLOWER_TASK_RUNTIME_METRIC_BUCKETS": BUCKETS,
    }
    with log.open("wb") as out:
        flower = subprocess.Popen(
            [
                str(celery),
                "-A",
                "workers.app",
                "flower",
                "--address=127.0.0.1",
                f"--port={port}",
                "--inspect_timeout=2000",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _get(f"{base}/healthcheck") == "OK", "no healthcheck", log)
        # Each inspect call of a refresh may time out on a busy machine: wait for a complete answer.
        # Waiting for it before the job also gives Flower's event receiver time to connect: a task
        # whose "received" event it missed shows up without a name.
        workers = _until(
            lambda: {
                k: v for k, v in _get(f"{base}/api/workers?refresh=1").items() if v.get("active_queues")
            },
            "no worker answered /api/workers with its queues",
            log,
        )
        result = cli("--json", "host", "ping", registered_host, "--timeout", "60")
        assert result.exit_code == 0, result.stderr
        job_id = result.json()["id"]

        tasks = _until(
            lambda: {
                k: v
                for k, v in _get(f"{base}/api/tasks").items()
                if v.get("state") == "SUCCESS" and v.get("name")
            },
            f"task {job_id} never showed as SUCCESS with its name",
            log,
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
        metrics = _get(f"{base}/metrics")
        assert 'flower_task_runtime_seconds_bucket{le="600.0",task="ceso.run_job"' in metrics
    finally:
        if flower.poll() is None:
            os.killpg(flower.pid, 15)
            try:
                flower.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(flower.pid, 9)
                flower.wait(timeout=10)
