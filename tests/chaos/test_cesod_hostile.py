"""cesod under hostile clients: deep nesting, NaN ids and duplicate keys get JSON-RPC errors; idle,
dripping and half-sent connections are cut at the request deadline and capped per address;
oversized headers and chunked bodies are refused; floods of bad tokens are counted but audited by
sample; cesod's threads stay within its worker pool, its memory flat, and a legitimate agent is
served throughout."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.security.helpers import add_agent
from tests.support.metrics_log import logged_metrics_url


def _threads_and_rss(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) // 1024


def _raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post(token: str, body: bytes) -> bytes:
    return (
        b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _answer(raw: bytes) -> Any:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def test_hostile_bodies_get_json_rpc_errors(cli: Cli, start_cesod: Any) -> None:
    token = add_agent(cli, unique("bot"))
    daemon = start_cesod()
    deep = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "job.list", "params": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}"
    )
    for body, says in (
        (deep, "nesting deeper than 32"),
        (b'{"jsonrpc": "2.0", "id": NaN, "method": "job.list"}', "NaN is not JSON"),
        (b'{"jsonrpc": "2.0", "id": Infinity, "method": "job.list"}', "Infinity is not JSON"),
        (b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "job.list"}', "duplicate key 'id'"),
    ):
        answer = _answer(_raw(daemon.port, _post(token, body)))
        assert answer["error"]["code"] == -32700 and says in answer["error"]["message"], answer
    assert "result" in daemon.call(token, "job.list")


def test_idle_dripping_and_half_sent_connections_are_cut_and_capped(
    cli: Cli, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, unique("bot"))
    daemon = start_cesod(
        CESO_CESOD__REQUEST_DEADLINE_S="3",
        CESO_CESOD__READ_TIMEOUT_S="30",
        CESO_CESOD__MAX_CONNECTIONS="40",
        CESO_CESOD__MAX_CONNECTIONS_PER_CLIENT="20",
        CESO_CESOD__WORKER_THREADS="4",
    )
    threads_before, rss_before = _threads_and_rss(daemon.proc.pid)
    pool = 4  # the most threads cesod may add, however many connections it holds
    # A client that drips its request a byte a second is cut at the deadline, not at its leisure.
    drip = socket.create_connection(("127.0.0.1", daemon.port), timeout=20)
    started = time.monotonic()
    closed_after = None
    for byte in _post(token, b"{}"):
        try:
            drip.sendall(bytes([byte]))
            if drip.recv(1, socket.MSG_DONTWAIT) == b"":
                closed_after = time.monotonic() - started
                break
        except BlockingIOError:
            pass
        except OSError:
            closed_after = time.monotonic() - started
            break
        time.sleep(0.5)
    drip.close()
    assert closed_after is not None and closed_after < 10, closed_after
    # 200 idle connections and 20 that announce a long body and stop: at most 20 are held at
    # once from this address (the rest are closed at once), all are cut at the deadline.
    idle = []
    for i in range(220):
        sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        if i < 20:  # headers announcing 100 kB, then one byte of it
            sock.sendall(_post(token, b"x" * 100_000)[:-99_999])
        idle.append(sock)
    time.sleep(0.5)
    threads_during, _ = _threads_and_rss(daemon.proc.pid)
    assert threads_during <= threads_before + pool, (threads_before, threads_during)
    time.sleep(4)
    # Cut at the deadline: every idle socket is closed by cesod by now.
    for sock in idle:
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b"", "a connection outlived the request deadline"
        sock.close()
    assert "result" in daemon.call(token, "job.list")
    threads_after, rss_after = _threads_and_rss(daemon.proc.pid)
    assert threads_after <= threads_before + pool, (threads_before, threads_after)
    assert rss_after - rss_before < 40, (rss_before, rss_after)
    metrics = logged_metrics_url(daemon.output(), "cesod")
    import urllib.request

    text = urllib.request.urlopen(metrics, timeout=10).read().decode()
    assert 'ceso_cesod_refused_total{reason="too_many_connections"}' in text


def test_bad_token_floods_are_counted_and_audited_by_sample(
    cli: Cli, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    from tests.security.helpers import audit_rows

    daemon = start_cesod(CESO_CESOD__RATE_PER_ADDRESS="0")  # a flood the rate limit would answer 429
    for i in range(200):
        status, _ = daemon.post({"jsonrpc": "2.0", "id": 1, "method": "job.list"}, token=f"bad-{i:04d}")
        assert status == 401
    refused = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'auth.refused'")
    assert len(refused) == 5, len(refused)  # the first five of the address in the minute
    import urllib.request

    text = urllib.request.urlopen(logged_metrics_url(daemon.output(), "cesod"), timeout=10).read().decode()
    assert 'ceso_cesod_refused_total{reason="unauthenticated"} 200.0' in text


def test_oversized_headers_chunked_bodies_and_idle_keep_alive(cli: Cli, start_cesod: Any) -> None:
    token = add_agent(cli, unique("bot"))
    daemon = start_cesod(CESO_CESOD__MAX_REQUEST_BYTES="2048", CESO_CESOD__KEEP_ALIVE_S="1")
    # Headers over cesod.max_header_bytes (16 KiB): a JSON-RPC error and the connection closed.
    raw = _raw(daemon.port, b"POST /rpc HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n")
    assert raw.split(b" ", 2)[1] == b"431", raw[:200]
    assert _answer(raw)["error"]["data"]["code"] == "headers_too_large"
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(b"POST /rpc HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        with contextlib.suppress(OSError):  # cesod may close before the last of it is sent
            for _ in range(64):
                sock.sendall(b"a" * 16_384)
        raw = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                raw += chunk
    assert raw.split(b" ", 2)[1] == b"400", raw[:200]  # never buffered whole
    assert _answer(raw)["error"]["data"]["code"] == "invalid_request"
    # A chunked body is read as it comes and cut at cesod.max_request_bytes.
    head = (
        b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    chunk = b"x" * 1000
    chunks = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    raw = _raw(daemon.port, head + chunks)
    assert raw.split(b" ", 2)[1] == b"413", raw[:200]
    assert _answer(raw)["error"]["data"]["code"] == "request_too_large"
    # A chunked body within the limit is served.
    body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "job.list"}).encode()
    raw = _raw(daemon.port, head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    assert _answer(raw) == {"jsonrpc": "2.0", "result": [], "id": 3}
    # Two requests on one kept-alive connection, then it is closed after cesod.keep_alive_s idle.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(_post(token, body))
            answer = b""
            while not answer.endswith(b"}"):
                answer += sock.recv(65536)
            assert _answer(answer)["id"] == 3
        started = time.monotonic()
        assert sock.recv(65536) == b""
        assert time.monotonic() - started < 5


def test_huge_integers_and_strings_are_invalid_params_and_change_nothing(
    cli: Cli, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    import sqlalchemy as sa

    token = add_agent(cli, unique("bot"), mode="standard")
    daemon = start_cesod()
    huge, long = 10**400, "x" * 500_000
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("job.list", {"limit": huge}, "param 'limit' must be from 1 to 10000"),
        ("job.list", {"limit": -1}, "param 'limit' must be from 1 to 10000"),
        ("job.list", {"host": long}, "param 'host' is longer than 1024 characters"),
        ("backup.list", {"limit": 10**9}, "param 'limit' must be from 0 to 100000"),
        ("job.wait", {"id": "abcdef", "timeout": huge}, "param 'timeout' must be from 0 to 3600"),
        ("agent.request_promotion", {"mode": "admin", "reason": long}, "longer than"),
        ("host.ping", {"name": long}, "longer than"),
        ("host.ping", {"name": "h", "timeout": -huge}, "param 'timeout' must be from 0 to 3600"),
        ("backup.create", {"vm": "a", "level": huge}, "param 'level'"),
        ("backup.create", {"vm": "a", "target": long}, "longer than 4096 characters"),
    ]
    for method, params, says in cases:
        error = daemon.call(token, method, params)["error"]
        assert error["code"] == -32602 and says in error["message"], (method, error["message"][:300])
    # Past Python's own limit on integer digits it is not JSON cesod reads at all.
    status, body = daemon.post(
        raw=b'{"jsonrpc": "2.0", "id": 1, "method": "job.list", "params": {"limit": ' + b"9" * 5000 + b"}}",
        token=token,
    )
    assert status == 200 and body["error"]["code"] == -32700
    engine = sa.create_engine(ceso_env["CESO_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM promotions")).scalar_one() == 0
    finally:
        engine.dispose()


def test_sigterm_lets_a_request_in_flight_finish_and_refuses_new_ones(cli: Cli, start_cesod: Any) -> None:
    import signal

    token = add_agent(cli, unique("bot"))
    daemon = start_cesod()
    body = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "job.list"}).encode()
    request = _post(token, body)
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(request[: -len(body)])  # the headers: the request is in flight
        time.sleep(0.5)
        daemon.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):  # no longer accepting
            _raw(daemon.port, request, timeout=5)
        sock.sendall(body)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert _answer(raw) == {"jsonrpc": "2.0", "result": [], "id": 9}
    assert daemon.proc.wait(timeout=30) == 0
    assert "cesod stopped" in daemon.output()
