"""Flower (ops/flower.md) on a free loopback port against an installation's Redis, for tests that
read what it shows: started in its own process group, stopped (SIGTERM, then SIGKILL) after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import free_port

#: The buckets ops/flower.md recommends: edges on the success criteria, up to the hard time limit.
BUCKETS = "1,5,10,30,60,90,120,300,600,900,1800,3600"


@dataclass
class Flower:
    base: str
    log: Path
    proc: subprocess.Popen[bytes]

    def get(self, path: str) -> Any:
        """``path`` of Flower's API or pages: parsed JSON, else the text."""
        with urllib.request.urlopen(f"{self.base}{path}", timeout=10) as response:
            body = response.read().decode()
        return json.loads(body) if body.startswith(("{", "[")) else body

    def until(self, fn: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        """Call ``fn`` until it returns something true (Flower errors count as not yet)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = fn()
                if value:
                    return value
            except (urllib.error.URLError, OSError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"flower: {what} within {timeout}s; log:\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.3)


@contextmanager
def flower(ceso_env: dict[str, str], tmp_path: Path) -> Iterator[Flower]:
    """Flower for the installation of ``ceso_env`` (its CESO_REDIS_URL), healthy when yielded."""
    tmp_path.mkdir(parents=True, exist_ok=True)
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
        proc = subprocess.Popen(
            [str(celery), "-A", "workers.app", "flower", "--address=127.0.0.1", f"--port={port}",
             "--inspect_timeout=2000"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    running = Flower(f"http://127.0.0.1:{port}", log, proc)
    try:
        running.until(lambda: running.get("/healthcheck") == "OK", "no healthcheck")
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
