"""A real cesod's /metrics counts agent calls exactly, with bounded labels, on its own port."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import Cli
from tests.metrics.test_worker_metrics import scrape
from tests.security.helpers import add_agent
from tests.support.cesod import CESOD_BIN

AGENT_OPERATIONS = "ceso_agent_operations_total"


def agent_operations(url: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every ``ceso_agent_operations_total`` series of one scrape, by its labels."""
    return {labels: v for (name, labels), v in scrape(url).items() if name == AGENT_OPERATIONS}


def moved(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def series(agent: str, mode: str, operation: str, outcome: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"agent": agent, "mode": mode, "operation": operation, "outcome": outcome}.items()))


def test_an_allowed_and_a_refused_call_move_the_counter_by_one_each(cli: Cli, start_cesod: Any) -> None:
    token = add_agent(cli, "bot")  # read-only
    daemon = start_cesod()
    url = daemon.metrics_url()
    assert urlsplit(url).port != daemon.port  # never on the JSON-RPC listener
    before = agent_operations(url)

    assert "result" in daemon.call(token, "job.list")
    refused = daemon.call(token, "vm.delete", {"name": "web-01", "host": "esxi-a"})
    assert refused["error"]["data"]["code"] == "not_permitted"

    assert moved(before, agent_operations(url)) == {
        series("bot", "read-only", "job.list", "ok"): 1,
        series("bot", "read-only", "vm.delete", "refused"): 1,
    }


def test_labels_stay_bounded_and_state_gauges_are_left_to_other_processes(cli: Cli, start_cesod: Any) -> None:
    token = add_agent(cli, "bot", mode="standard")
    daemon = start_cesod()
    url = daemon.metrics_url()
    before = agent_operations(url)

    for name in ("no.such.method", "x" * 200):
        assert daemon.call(token, name)["error"]["data"]["code"] == "method_not_found"
    missing = daemon.call(token, "job.status", {"id": "00000000-0000-0000-0000-000000000000"})
    assert missing["error"]["data"]["code"] == "not_found"

    assert moved(before, agent_operations(url)) == {
        series("bot", "standard", "unknown", "failed"): 2,
        series("bot", "standard", "job.status", "failed"): 1,
    }
    # Jobs by state, queue depth and the like come from workers and `ceso metrics serve`.
    assert not [
        name for name, _ in scrape(url) if name.startswith(("ceso_jobs_in_state", "ceso_queue_depth"))
    ]


def test_metrics_port_off_and_busy(cli: Cli, start_cesod: Any, ceso_env: dict[str, str]) -> None:
    daemon = start_cesod(CESO_METRICS__ENABLED="false")
    assert "metrics on" not in daemon.output()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [str(CESOD_BIN), "--listen", "127.0.0.1:0", "--metrics-port", str(port)],
            env={**os.environ, **ceso_env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 5, proc.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in proc.stderr and "--metrics-port" in proc.stderr
    assert "listening on" not in proc.stderr  # stopped before the RPC port was bound
