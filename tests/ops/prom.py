"""A real Prometheus server (Debian's ``prometheus`` package) for the ops tests.

:meth:`PrometheusServer.start` writes its own config (scraping the given targets every second
under the job name ``ceso-workers``, and those of other jobs under their own names as in
ops/prometheus/prometheus.yml, optionally loading rule files), keeps its TSDB in a
directory of the test, binds a free loopback port and returns once ``/-/ready`` answers.
:meth:`PrometheusServer.stop` terminates it. A missing binary fails the test: ops/dev/setup.sh
installs the package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "ops" / "prometheus" / "alerts.yml"


def tool(name: str) -> str:
    """Path of a Prometheus tool; fails the test if the Debian package is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package (ops/dev/setup.sh does)")
    return path


class PromQLError(AssertionError):
    """Prometheus rejected a query."""


@dataclass
class PrometheusServer:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(
        cls,
        workdir: Path,
        targets: tuple[str, ...] = (),
        rule_files: tuple[Path, ...] = (),
        tries: int = 3,
        jobs: dict[str, tuple[str, ...]] | None = None,
    ) -> PrometheusServer:
        binary = tool("prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        scraped = {"ceso-workers": targets, **(jobs or {})}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(hosts)}]}
                for job, hosts in scraped.items()
                if hosts
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        log_path = workdir / "prometheus.log"
        last = ""
        for _ in range(tries):  # a free port can be taken between picking and binding it
            port = free_port()
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            server = cls(proc, f"http://127.0.0.1:{port}", log_path)
            if server._wait_ready(30):
                return server
            last = log_path.read_text(errors="replace")[-3000:]
            server.stop()
        pytest.fail(f"prometheus did not start: {last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` of a success, PromQLError with Prometheus's message otherwise."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PromQLError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at now; the result vector (a scalar comes back as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns a non-empty result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{expr} returned nothing for {timeout}s; log: {self.log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.25)
