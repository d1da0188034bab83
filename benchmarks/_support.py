"""Shared pieces of ceso's benchmarks: an isolated ceso installation, a request-counting proxy,
timing helpers and a plain-text table.

Nothing here writes into the repository: state lives in a temporary directory (SQLite database,
secret file, data dir, HOME, Python bytecode cache) and Redis DB 14 unless
``CESO_BENCH_REDIS_URL`` says otherwise. Import this module only after
``sys.dont_write_bytecode = True``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support.simulator / tests.support.vms

CESO = Path(sys.executable).with_name("ceso")
REDIS_URL = os.environ.get("CESO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SIM_PASSWORD = "simulator"  # the simulator accepts any non-empty password

__all__ = [
    "CESO",
    "REDIS_URL",
    "REPO",
    "RequestCountingProxy",
    "ceso_env",
    "ceso_worker",
    "delete_redis_keys",
    "exit_on_sigterm",
    "log",
    "median",
    "percentile",
    "pg_database",
    "print_table",
    "register_host",
    "run_timed",
]


_T0 = time.perf_counter()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop the processes a benchmark started."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def log(message: str) -> None:
    """Progress on stderr, stamped with seconds since start (stdout is kept for the tables)."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def ceso_env(tmp: Path) -> dict[str, str]:
    """Environment of a throw-away ceso installation under ``tmp`` (also usable for children).

    Child Pythons keep their bytecode in ``tmp/pycache`` (PYTHONPYCACHEPREFIX), so they start as
    fast as an installed ceso with a warm cache, yet write no ``__pycache__`` into the repo.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CESO_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        CESO_DATABASE_URL=f"sqlite:///{tmp / 'ceso.db'}",
        CESO_REDIS_URL=REDIS_URL,
        CESO_DATA_DIR=str(tmp / "data"),
        CESO_SECRET_STORE="file",
        HOME=str(tmp / "home"),
        PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
    )
    return env


def register_host(env: dict[str, str], name: str, url: str) -> None:
    """``ceso host add`` a plain-http simulator (raises CalledProcessError with ceso's stderr)."""
    proc = subprocess.run(
        [str(CESO), "host", "add", name, "--url", url, "--user", "root", "--password-stdin"],
        input=SIM_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ceso host add {name} failed ({proc.returncode}): {proc.stderr.strip()}")


def run_timed(cmd: Sequence[str], env: dict[str, str], *, expect_ok: bool = True) -> tuple[float, str]:
    """Run ``cmd`` to completion; return (wall seconds, stdout). Raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=300, check=False)
    elapsed = time.perf_counter() - start
    if expect_ok and proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip())[-2000:]  # --json errors go to stdout
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {output}")
    return elapsed, proc.stdout


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A GitHub-markdown table on stdout (pastes straight into docs/benchmarks.md)."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}\n")
    for i, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


_REQUEST_LINE = re.compile(rb"(?:GET|POST|PUT|HEAD|DELETE|OPTIONS) [^ \r\n]+ HTTP/1\.[01]\r\n")
_TAIL = 512  # bytes kept between reads so a request line split across reads is still seen


class RequestCountingProxy:
    """A TCP forwarder in front of an HTTP server that counts HTTP request lines sent through it.

    It forwards bytes untouched (keep-alive, cookies and all), so the client behaves exactly as
    without it; :attr:`requests` is the number of HTTP requests clients sent. Use as a context
    manager; :attr:`url` replaces the upstream ``http://host:port`` in a URL.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.requests = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="count-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sdk"

    def reset(self) -> int:
        """Return the count so far and start again from zero."""
        with self._lock:
            count, self.requests = self.requests, 0
        return count

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.upstream)
            for s in (client, upstream):  # forward each write at once (Nagle + delayed ACK cost 40 ms)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, self._count), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _count(self, data: bytes, tail: bytes) -> None:
        found = sum(1 for m in _REQUEST_LINE.finditer(tail + data) if m.end() > len(tail))
        if found:
            with self._lock:
                self.requests += found

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, on_data: Callable[[bytes, bytes], None] | None) -> None:
        tail = b""
        try:
            while data := src.recv(65536):
                if on_data is not None:
                    on_data(data, tail)
                    tail = (tail + data)[-_TAIL:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> RequestCountingProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- helpers added for benchmarks/vm_create.py (appended; the ones above keep their signatures) --


@contextlib.contextmanager
def ceso_worker(
    env: dict[str, str], host: str, log_path: Path, *, concurrency: int = 1, metrics_port: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``ceso worker --host HOST`` in its own process group, ready on entry, stopped on exit.

    Stopping is group-wide (SIGTERM, SIGKILL after 30 s), so prefork children go with it, also on
    error and on SystemExit from :func:`exit_on_sigterm`.
    """
    cmd = [
        str(CESO), "worker", "--host", host, "--concurrency", str(concurrency),
        "--metrics-port", str(metrics_port), "--loglevel", "info",
    ]  # fmt: skip
    env = {**env, "CESO_METRICS__WORKER_PORT": str(metrics_port)}
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"worker for {host} not ready:\n{log_path.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def pg_database(
    name: str, admin_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
) -> Iterator[str]:
    """A fresh PostgreSQL database with ceso's schema (its URL on entry); dropped on exit."""
    import sqlalchemy as sa

    from ceso.db.engine import make_engine
    from ceso.db.migrate import upgrade

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def delete_redis_keys(redis_url: str, token: str) -> int:
    """Delete the keys whose name contains ``token`` (a run's unique host names: queues, bindings,
    locks, fences); return how many. Never flushes: the DB may be shared."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{token}*"))
        for key in keys:
            client.delete(key)
        return len(keys)
    finally:
        client.close()
