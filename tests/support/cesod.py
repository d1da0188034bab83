"""A real ``cesod`` process for tests, with a minimal JSON-RPC client (fixture ``start_cesod``)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.metrics_log import logged_metrics_url

CESOD_BIN = Path(sys.executable).with_name("cesod")


class Cesod:
    """A running ``cesod --listen 127.0.0.1:0`` and a minimal HTTP client for it.

    With ``client_tls`` the client speaks HTTPS with that context (cesod then needs its
    certificate, e.g. through ``CESO_CESOD__TLS_CERT``/``CESO_CESOD__TLS_KEY``).
    """

    def __init__(
        self, env: dict[str, str], log_path: Path, access_log: Path, client_tls: ssl.SSLContext | None = None
    ) -> None:
        self.log_path = log_path
        self.access_log = access_log
        self.client_tls = client_tls
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(CESOD_BIN), "--listen", "127.0.0.1:0"],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            found = re.search(
                r"listening on https?://127\.0\.0\.1:(\d+)/rpc", log_path.read_text(errors="replace")
            )
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"cesod did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def post(
        self,
        payload: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        path: str = "/rpc",
        method: str = "POST",
        headers: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> tuple[int, Any]:
        """Send one HTTP request; return (status, parsed JSON body or None)."""
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn = (
            http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.client_tls)
            if self.client_tls is not None
            else http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        )
        try:
            conn.request(method, path, body=body if method == "POST" else None, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(data) if data else None

    def call(
        self, token: str, method: str, params: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        """One JSON-RPC call (id 1); the response object."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            request["params"] = params
        status, body = self.post(request, token=token, **kw)
        assert status == 200, (status, body)
        assert isinstance(body, dict)
        return body

    def metrics_url(self) -> str:
        """The URL of this cesod's /metrics, read from its log (served before the RPC port binds)."""
        return logged_metrics_url(self.output(), "cesod")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._log.close()
