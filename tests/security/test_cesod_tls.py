"""cesod over TLS: a real HTTPS client that pins cesod's self-signed certificate is served; a
plain-HTTP client and a client that does not trust the certificate get nothing; cesod refuses to
send bearer tokens in clear text off loopback unless told ``--insecure-http``."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.conftest import Cli, unique
from tests.security.helpers import add_agent
from tests.support.cesod import CESOD_BIN
from tests.support.tls import self_signed


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path, "cesod")


def _pinned(cert: Path) -> ssl.SSLContext:
    """A client context that trusts exactly cesod's certificate (the agent's pin)."""
    return ssl.create_default_context(cafile=str(cert))


def test_an_agent_pinning_the_certificate_is_served_over_https(
    cli: Cli, start_cesod: Any, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    token = add_agent(cli, unique("bot"))
    daemon = start_cesod(
        client_tls=_pinned(cert), CESO_CESOD__TLS_CERT=str(cert), CESO_CESOD__TLS_KEY=str(key)
    )
    assert "listening on https://127.0.0.1:" in daemon.output()
    answer = daemon.call(token, "job.list")
    assert "result" in answer, answer
    # The session really is TLS 1.2+ with cesod's certificate.
    with (
        socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw,
        _pinned(cert).wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    assert x509.load_der_x509_certificate(served) == x509.load_pem_x509_certificate(cert.read_bytes())


def test_plain_http_and_untrusting_clients_get_nothing(
    cli: Cli, start_cesod: Any, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = tls_files
    token = add_agent(cli, unique("bot"))
    daemon = start_cesod(
        client_tls=_pinned(cert), CESO_CESOD__TLS_CERT=str(cert), CESO_CESOD__TLS_KEY=str(key)
    )
    # A plain-HTTP client sends its token in clear text: cesod answers nothing at all.
    plain = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("POST", "/rpc", body=b"{}", headers={"Authorization": f"Bearer {token}"})
        plain.getresponse().read()
    plain.close()
    # A client that trusts only another certificate refuses cesod's.
    other_cert, _ = self_signed(tmp_path, "other")
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw,
    ):
        _pinned(other_cert).wrap_socket(raw, server_hostname="127.0.0.1")
    # Both are in the access log; the token never is, and cesod still serves its agent.
    deadline = time.monotonic() + 10
    while daemon.access_log.read_text().count("handshake failed") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    access = daemon.access_log.read_text()
    assert access.count("handshake failed") >= 2, access
    assert token not in access and token not in daemon.output()
    assert "result" in daemon.call(token, "job.list")


def _run_cesod(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int | None, str]:
    """Start cesod with ``args``; (exit code, output) if it exits, or (None, output) once it says it
    listens (then it is stopped). Waits up to ``timeout`` for either: a loaded machine is slow to start
    it, and a fixed grace period would take a slow start for one that listens."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [str(CESOD_BIN), "--metrics-port", "-1", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

        def output() -> str:
            out.seek(0)
            return out.read()

        deadline = time.monotonic() + timeout
        while proc.poll() is None and "listening on " not in output():
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"cesod neither listened nor exited in {timeout}s:\n{output()}")
            time.sleep(0.1)
        if proc.poll() is not None:
            return proc.returncode, output()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        return None, output()


def test_clear_text_off_loopback_is_refused_unless_asked(
    ceso_env: dict[str, str], tls_files: tuple[Path, Path]
) -> None:
    code, out = _run_cesod(ceso_env, "--listen", "0.0.0.0:0")
    assert code == 2, out
    assert "clear text" in out and "--tls-cert" in out and "--insecure-http" in out
    code, out = _run_cesod(ceso_env, "--listen", "0.0.0.0:0", "--insecure-http")
    assert code is None and "listening on http://0.0.0.0:" in out, out
    cert, key = tls_files
    code, out = _run_cesod(ceso_env, "--listen", "0.0.0.0:0", "--tls-cert", str(cert), "--tls-key", str(key))
    assert code is None and "listening on https://0.0.0.0:" in out, out


def test_bad_tls_files_are_one_clear_error(ceso_env: dict[str, str], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "one")
    _, other_key = self_signed(tmp_path, "two")
    code, out = _run_cesod(ceso_env, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert code == 2, out
    assert "cannot use the TLS certificate" in out and "Traceback" not in out
    assert "PRIVATE KEY" not in out
    code, out = _run_cesod(ceso_env, "--tls-cert", str(cert))
    assert code == 2 and "--tls-cert and --tls-key go together" in out, out
    code, out = _run_cesod(ceso_env, "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key))
    assert code == 2 and "is not a readable file" in out, out
    code, out = _run_cesod({**ceso_env, "CESO_CESOD__TLS_CERT": str(cert)})
    assert code == 2 and "tls_cert and cesod.tls_key go together" in out, out
