"""cesod under hostile clients: deep nesting, NaN ids and duplicate keys get JSON-RPC errors; idle,
dripping and half-sent connections are cut at the request deadline and capped per address;
floods of bad tokens are counted but audited by sample; cesod's threads and memory stay flat
and a legitimate agent is served throughout."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

from tests.conftest import Cli, unique
from tests.security.helpers import add_agent
from tests.support.metrics_log import logged_metrics_url
from tests.support.waiting import wait_for


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
    )
    threads_before, rss_before = _threads_and_rss(daemon.proc.pid)
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
    assert threads_during <= threads_before + 20 + 2, (threads_before, threads_during)
    time.sleep(4)
    # Cut at the deadline: every idle socket is closed by cesod by now.
    for sock in idle:
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b"", "a connection outlived the request deadline"
        sock.close()
    assert "result" in daemon.call(token, "job.list")
    # The cut connections' threads end on their own; on a loaded machine that takes a moment.
    wait_for(
        "cesod's threads to settle", lambda: _threads_and_rss(daemon.proc.pid)[0] <= threads_before + 2, 30
    )
    _, rss_after = _threads_and_rss(daemon.proc.pid)
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
