"""A real worker's /metrics moves by exactly what happened (multiprocess aggregate across prefork children)."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cli
from tests.jobs.test_worker_e2e import _submit


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_job_metrics_count_what_ran(cli: Cli, registered_host: str, start_worker: Any) -> None:
    worker = start_worker(registered_host, concurrency=2)
    url = worker.metrics_url()
    host = registered_host
    before = scrape(url)
    assert value(before, "ceso_jobs_total", kind="host.ping", host=host, outcome="succeeded") == 0
    for _ in range(2):
        assert cli("host", "ping", host, "--timeout", "60").exit_code == 0
    failing = _submit("test.sleep", host, params={"seconds": 0, "fail": "on purpose"})
    assert cli("job", "wait", failing, "--timeout", "60").exit_code == 1

    after = scrape(url)
    assert value(after, "ceso_jobs_total", kind="host.ping", host=host, outcome="succeeded") == 2
    assert value(after, "ceso_jobs_total", kind="test.sleep", host=host, outcome="failed") == 1
    assert (
        value(after, "ceso_job_duration_seconds_count", kind="host.ping", host=host, outcome="succeeded") == 2
    )
    assert (
        value(
            after,
            "ceso_job_duration_seconds_bucket",
            kind="host.ping",
            host=host,
            outcome="succeeded",
            le="90.0",
        )
        == 2
    )
    assert value(after, "ceso_job_queue_wait_seconds_count", kind="host.ping", host=host) == 2
    assert value(after, "ceso_esxi_request_duration_seconds_count", host=host, method="CurrentTime") == 2
    assert value(after, "ceso_jobs_in_state", state="succeeded", host=host) == 2
    assert value(after, "ceso_jobs_in_state", state="failed", host=host) == 1
    assert value(after, "ceso_jobs_in_state", state="queued", host=host) == 0
    assert value(after, "ceso_worker_host", host=host) == 1
    assert value(after, "ceso_queue_depth", host=host) == 0
    assert value(after, "ceso_esxi_logins_total", host=host, event="login") >= 1
    # No job ids or other unbounded values in labels.
    assert not any(len(v) == 36 and v.count("-") == 4 for _, labels in after for _, v in labels)


def test_busy_metrics_port_is_a_clear_error(cli: Cli, registered_host: str, ceso_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = Cli(ceso_env)(
            "--json",
            "worker",
            "--host",
            registered_host,
            "--metrics-port",
            str(port),
            subprocess_=True,
            timeout=60,
        )
    assert result.exit_code == 5
    error = result.json()["error"]
    assert error["code"] == "port_in_use"
    assert f"127.0.0.1:{port}" in error["message"] and "--metrics-port" in error["message"]
