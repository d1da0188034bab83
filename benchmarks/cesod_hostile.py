"""Benchmark cesod under hostile traffic: its RSS and threads before, during and after, and the
latency of a simple call, against a baseline revision of cesod in the same run.

What it measures, and why: cesod faces whatever can reach its port. A hostile run must leave it as
it was (threads and memory flat), and hardening must not make an honest agent's call, or the
CLI's call forwarded over the operator socket, slower.

Setup: for each cesod (this checkout, and with ``--baseline DIR`` a checkout of another revision,
e.g. ``mkdir /tmp/ceso-main && git archive main | tar -x -C /tmp/ceso-main``, run by this virtualenv's Python with DIR first on
``PYTHONPATH``): a temporary ceso installation (SQLite, Redis DB 14), one read-only agent, and
``cesod --listen 127.0.0.1:0`` with the rate limits off, the connection caps raised to 2048 (so the
idle connections are really held, not closed at the cap) and a 5 s request deadline.

* latency: ``--calls`` ``job.list`` calls over TCP, one connection each (as ``urllib`` does), and
  as many over the operator socket as the CLI forwards a command (``ceso.cesod.local.call``),
  ten at a time to each cesod in turn (both running), so both see the same machine load; p50 and
  p90 in ms;
* hostile run, all at once: ``--idle`` connections that send nothing, 50 clients dripping a
  request a byte every 0.2 s, 1000 requests with bad tokens (from 8 threads), 20 bodies nested
  100 000 deep, 20 params holding 4000-digit integers; cesod's threads and RSS (``/proc``) before,
  at the peak while the idle connections are held, and 2 s after the deadline has cut them.

Run: .venv/bin/python benchmarks/cesod_hostile.py [--baseline /tmp/ceso-main] [--calls 300] [--idle 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import CESO, ceso_env, exit_on_sigterm, log, percentile, print_table  # noqa: E402

CESOD_MAIN = "from ceso.cesod.main import main; main()"


def _status(pid: int) -> tuple[int, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


class Daemon:
    def __init__(self, label: str, source: Path | None, tmp: Path) -> None:
        self.label, self.tmp = label, tmp
        self.env = ceso_env(tmp)
        if source is not None:
            self.env["PYTHONPATH"] = str(source)
        out = subprocess.run(
            [sys.executable, "-c", "import ceso, sys; print(ceso.__file__)"],
            env=self.env,
            cwd=tmp,  # not the repository: Python puts the working directory first on sys.path
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        log(f"{label}: ceso from {out.strip()}")
        self.token = self._token()
        self.env.update(
            CESO_CESOD__RATE_PER_ADDRESS="0",
            CESO_CESOD__RATE_PER_TOKEN="0",
            CESO_CESOD__MAX_CONNECTIONS="2048",
            CESO_CESOD__MAX_CONNECTIONS_PER_CLIENT="2048",
            CESO_CESOD__REQUEST_DEADLINE_S="5",
            CESO_CESOD__ACCESS_LOG=str(tmp / "access.log"),
        )
        self.log = (tmp / "cesod.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CESOD_MAIN, "--listen", "127.0.0.1:0", "--metrics-port", "-1"],
            env=self.env,
            cwd=tmp,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            text = (tmp / "cesod.log").read_text(errors="replace")
            port = re.search(r"listening on http://127\.0\.0\.1:(\d+)/rpc", text)
            sock = re.search(r"serving the local operator on (\S+)", text)
            if port:
                self.port = int(port.group(1))
                self.socket = sock.group(1) if sock else None
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label}: cesod did not start:\n{text[-2000:]}")
            time.sleep(0.05)

    def _token(self) -> str:
        out = subprocess.run(
            [str(CESO), "--json", "agent", "add", "bench"],
            env=self.env,
            cwd=self.tmp,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return str(json.loads(out)["token"])

    def post(self, body: bytes, token: str | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(
                "POST",
                "/rpc",
                body=body,
                headers={
                    "Authorization": f"Bearer {token or self.token}",
                    "Content-Type": "application/json",
                },
            )
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "job.list", "params": {"limit": 5}}).encode()


def tcp_latency(daemon: Daemon, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        assert daemon.post(CALL) == 200
        times.append((time.perf_counter() - start) * 1000)
    return times


def socket_latency(daemon: Daemon, calls: int) -> list[float]:
    from ceso.cesod.local import call

    times = []
    for _ in range(calls):
        start = time.perf_counter()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(daemon.socket))
        call(sock, "job.list", {"limit": 5}, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
    return times


def hostile(daemon: Daemon, idle_count: int) -> dict[str, Any]:
    pid = daemon.proc.pid
    before = _status(pid)
    stop = threading.Event()
    idle: list[socket.socket] = []
    for _ in range(idle_count):
        with contextlib.suppress(OSError):
            idle.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=10))

    time.sleep(0.5)
    held = sum(1 for s in idle if _open(s))

    def drip() -> None:
        request = (
            b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nAuthorization: Bearer "
            + daemon.token.encode()
            + b"\r\n\r\n"
            + b"x" * 100
        )
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s,
        ):
            for byte in request:
                if stop.is_set():
                    return
                s.sendall(bytes([byte]))
                time.sleep(0.2)

    def bad_tokens(n: int, offset: int) -> None:
        for i in range(n):
            with contextlib.suppress(OSError, http.client.HTTPException):
                daemon.post(CALL, token=f"bad-{offset + i:06d}")

    deep = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "job.list", "params": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}"
    )
    huge = b'{"jsonrpc": "2.0", "id": 1, "method": "job.list", "params": {"limit": ' + b"9" * 4000 + b"}}"
    threads = [threading.Thread(target=drip) for _ in range(50)]
    threads += [threading.Thread(target=bad_tokens, args=(125, 125 * i)) for i in range(8)]
    threads += [
        threading.Thread(target=lambda body=body: [daemon.post(body) for _ in range(20)])
        for body in (deep, huge)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads[50:]) or time.monotonic() - started < 3:
        now = _status(pid)
        peak = (max(peak[0], now[0]), max(peak[1], now[1]))
        time.sleep(0.2)
    time.sleep(max(0.0, 5 + 2 - (time.monotonic() - started)))  # past the deadline
    stop.set()
    for t in threads:
        t.join(timeout=30)
    cut = sum(1 for s in idle if not _open(s))
    for s in idle:
        s.close()
    time.sleep(1)
    assert daemon.post(CALL) == 200  # still serving
    after = _status(pid)
    return {"before": before, "peak": peak, "after": after, "idle": len(idle), "held": held, "cut": cut}


def _open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of another revision to compare with")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--idle", type=int, default=1000)
    args = parser.parse_args()
    exit_on_sigterm()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    cesods = [("this checkout", None)] + ([("baseline", args.baseline)] if args.baseline else [])
    results: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        daemons = []
        for label, source in cesods:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ceso-bench-cesod-")))
            daemon = Daemon(label, source, tmp)
            stack.callback(daemon.stop)
            tcp_latency(daemon, 20)  # warm-up
            daemons.append(daemon)
        # Latency interleaved, ten calls of each at a time: both see the same machine load.
        log("latency")
        for daemon in daemons:
            results[daemon.label] = {"tcp": [], "local": []}
        for _ in range(max(1, args.calls // 10)):
            for daemon in daemons:
                results[daemon.label]["tcp"] += tcp_latency(daemon, 10)
                if daemon.socket:
                    results[daemon.label]["local"] += socket_latency(daemon, 10)
        for daemon in daemons:
            log(f"{daemon.label}: hostile run")
            results[daemon.label].update(hostile(daemon, args.idle))
    rows = []
    for label, r in results.items():
        rows.append(
            [
                label,
                f"{percentile(r['tcp'], 50):.2f} / {percentile(r['tcp'], 90):.2f}",
                f"{percentile(r['local'], 50):.2f} / {percentile(r['local'], 90):.2f}" if r["local"] else "-",
                f"{r['before'][0]} / {r['peak'][0]} / {r['after'][0]}",
                f"{r['before'][1]:.0f} / {r['peak'][1]:.0f} / {r['after'][1]:.0f}",
                f"{r['held']} of {r['idle']}, {r['cut']} cut",
            ]
        )
    print_table(
        f"cesod: job.list latency ({args.calls} calls) and a hostile run ({args.idle} idle connections, 50 drip "
        "clients, 1000 bad tokens, 20 deep and 20 huge-integer bodies)",
        [
            "cesod",
            "TCP p50 / p90 ms",
            "operator socket p50 / p90 ms",
            "threads before / peak / after",
            "RSS MiB before / peak / after",
            "idle connections held, cut by the deadline",
        ],
        rows,
    )
    if len(results) == 2:
        new, old = results["this checkout"], results["baseline"]
        print(
            f"\nTCP p50 ratio (this / baseline): {percentile(new['tcp'], 50) / percentile(old['tcp'], 50):.2f}"
        )
        if new["local"] and old["local"]:
            ratio = percentile(new["local"], 50) / percentile(old["local"], 50)
            print(f"operator socket p50 ratio (this / baseline): {ratio:.2f}")


if __name__ == "__main__":
    main()
