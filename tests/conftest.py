"""Shared fixtures: real SQLite and PostgreSQL, real Redis, simulated ESXi hosts, a CLI runner
and real worker and cesod processes.

No fixture skips: a missing prerequisite (PostgreSQL, Redis, the Go toolchain) fails the test,
so CI can never pass by running less than it claims.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from tests.support.cesod import Cesod
from tests.support.metrics_log import logged_metrics_url
from tests.support.simulator import SimulatorHost

PG_ADMIN_URL = os.environ.get(
    "CESO_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _redis_test_url() -> str:
    """The tests' Redis database: CESO_TEST_REDIS_URL (default DB 15). Under pytest-xdist each
    worker process takes the database below the previous one's (gw0: 15, gw1: 14, …), since
    every session flushes its own at start."""
    url = os.environ.get("CESO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    number = int(db or 0) - int(worker[2:])
    if number < 0:
        raise pytest.UsageError(f"{url}: no Redis database left for xdist worker {worker}; start higher")
    return f"{base}/{number}"


REDIS_TEST_URL = _redis_test_url()
REPO = Path(__file__).resolve().parents[1]
CESO_BIN = Path(sys.executable).with_name("ceso")


# -- services -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_TEST_URL}: {exc}")
    client.flushdb()
    return REDIS_TEST_URL


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, schema upgraded; dropped at the end."""
    name = f"ceso_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    from ceso.db.engine import make_engine
    from ceso.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        if tables:
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that touches SQL runs on both SQLite and PostgreSQL.

    Afterwards (workers stopped by then) every job the test left in the database must have
    its audit records: see tests/support/audit_check.py (opt out: ``@pytest.mark.audit_exempt``).
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ceso.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate(url)
    yield url
    if request.node.get_closest_marker("audit_exempt") is None:
        from tests.support.audit_check import audit_gaps

        checked, gaps = audit_gaps(url)
        AUDIT_COMPLETENESS[request.param] = AUDIT_COMPLETENESS.get(request.param, 0) + checked
        assert not gaps, "audit completeness:\n" + "\n".join(gaps)


#: Jobs checked for audit completeness per database in this session (reported at the end).
AUDIT_COMPLETENESS: dict[str, int] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "audit_exempt: the test leaves jobs without audit records on purpose")


#: Fixtures that start processes (workers, cesod, extra simulators, sshd): the tests that take
#: seconds to minutes rather than milliseconds.
_PROCESS_FIXTURES = {"start_worker", "start_cesod", "sim_factory", "ssh_bed", "pg_database"}


def _cost_rank(item: pytest.Item) -> int:
    """0 for ``slow`` (minutes each), 1 for the chaos suite, 2 for tests that start processes, 3 else."""
    if item.get_closest_marker("slow") is not None:
        return 0
    if item.get_closest_marker("chaos") is not None:
        return 1
    return 2 if _PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) else 3


FAKE_HOST = "fake-host"


@pytest.fixture
def fake(ceso_env: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """Host FAKE_HOST registered, every job's backend the in-memory FakeBackend (yielded with the
    runtime): real jobs (SQL row, claim, steps, locks, audit) through ``run_job`` in milliseconds."""
    from sqlmodel import Session

    from ceso.backends.fake import FakeBackend
    from ceso.db.models import Host
    from ceso.runtime import get_runtime

    runtime = get_runtime()
    with Session(runtime.engine) as session:
        session.add(Host(name=FAKE_HOST, url=f"https://{FAKE_HOST}.invalid/sdk", username="root"))
        session.commit()
    backend = FakeBackend(host=FAKE_HOST)

    def factory(_host: Any, _route: str, record: Any) -> FakeBackend:
        backend.record = record  # calls land on the job's steps, as the real routes' do
        return backend

    runtime.backend_factory = factory
    yield runtime, backend
    runtime.backend_factory = None


@pytest.fixture(autouse=True)
def _sigint_left_as_found() -> Iterator[None]:
    """Fail a test that leaves this process's SIGINT disposition changed (and restore it): the
    processes later tests start inherit an ignored SIGINT, and a CLI under test then never hears
    its Ctrl-C (under pytest-xdist, a test sharing a worker process with such a test hung)."""
    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before:
        signal.signal(signal.SIGINT, before)
        pytest.fail(f"this test left SIGINT's handler changed: {before!r} -> {after!r}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist the costliest tests are handed out first, so that the many quick ones
    fill the gaps at the end instead of a long test starting last and running alone. The sort is
    stable (collection order within a rank) and the same in every process, as xdist requires."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=_cost_rank)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if AUDIT_COMPLETENESS:
        counts = ", ".join(f"{n} jobs on {db}" for db, n in sorted(AUDIT_COMPLETENESS.items()))
        terminalreporter.write_line(f"audit completeness checked after each test: {counts}")


@pytest.fixture
def ceso_env(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment of an isolated ceso installation; also applied to this process."""
    data_dir = tmp_path / "data"
    # A short private directory for cesod's operator socket (Unix socket paths are limited to 107 bytes).
    run_dir = Path(tempfile.mkdtemp(prefix="ceso-run-"))
    env = {
        "CESO_DATABASE_URL": database_url,
        "CESO_REDIS_URL": redis_url,
        "CESO_DATA_DIR": str(data_dir),
        "CESO_SECRET_STORE": "file",
        "CESO_JOBS__HEARTBEAT_S": "0.5",
        "CESO_JOBS__STALE_AFTER_S": "5",
        "CESO_METRICS__WORKER_PORT": "0",  # several workers per test: any free port each
        "CESO_METRICS__CESOD_PORT": "0",  # and several cesod processes
        "CESO_HOST_PROBE_INTERVAL_S": "0",  # no background probes: tests count calls exactly
        "HOME": str(tmp_path / "home"),
        "XDG_RUNTIME_DIR": str(run_dir),
    }
    for key in [k for k in os.environ if k.startswith("CESO_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _clear_caches()
    yield env
    _clear_caches()
    shutil.rmtree(run_dir, ignore_errors=True)


def _clear_caches() -> None:
    from ceso.runtime import get_runtime
    from ceso.settings import get_settings

    if get_runtime.cache_info().currsize:
        get_runtime().close()  # log out of pooled ESXi sessions before forgetting them
    get_runtime.cache_clear()
    get_settings.cache_clear()


# -- CLI ------------------------------------------------------------------------------------------
@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs ``ceso`` in this process (fast) or as a real subprocess (``subprocess=True``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(
        self, *args: str, input: str | None = None, subprocess_: bool = False, timeout: float = 120
    ) -> CliResult:
        if subprocess_:
            proc = subprocess.run(
                [str(CESO_BIN), *args],
                input=input,
                capture_output=True,
                text=True,
                env={**os.environ, **self.env},
                timeout=timeout,
                check=False,
            )
            return CliResult(proc.returncode, proc.stdout, proc.stderr)
        from ceso.cli import main

        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(input or "")
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            sys.stdin = old_stdin
        return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(ceso_env: dict[str, str]) -> Cli:
    return Cli(ceso_env)


# -- simulated ESXi hosts ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorHost]:
    """One plain (http) simulated ESXi host shared by the session; tests make their own VMs."""
    host = SimulatorHost.start()
    yield host
    host.stop()


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """Start extra simulated hosts for one test (``sim_factory(tls=True)``); all stopped after."""
    started: list[SimulatorHost] = []

    def start(**kw: Any) -> SimulatorHost:
        host = SimulatorHost.start(**kw)
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def registered_host(cli: Cli, sim: SimulatorHost) -> str:
    """A host name registered in ceso for the session simulator."""
    name = unique("sim")
    result = cli("host", "add", name, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
    assert result.exit_code == 0, result.stderr
    return name


# -- workers ---------------------------------------------------------------------------------------
class Worker:
    """A real ``ceso worker`` process."""

    def __init__(
        self,
        env: dict[str, str],
        hosts: list[str],
        concurrency: int,
        log_path: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        args = [str(CESO_BIN), "worker", "--concurrency", str(concurrency), *extra_args]
        for h in hosts:
            args += ["--host", h]
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if " ready." in text:
                return
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited with {self.proc.returncode}:\n{text[-4000:]}")
            time.sleep(0.1)
        pytest.fail(
            f"worker not ready after {timeout}s:\n{self.log_path.read_text(errors='replace')[-4000:]}"
        )

    def metrics_url(self) -> str:
        """The URL of this worker's /metrics, read from its log."""
        return logged_metrics_url(self.output(), "worker")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (main process and prefork children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def start_worker(ceso_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def start(*hosts: str, concurrency: int = 2, env: dict[str, str] | None = None) -> Worker:
        w = Worker(
            {**ceso_env, **(env or {})}, list(hosts), concurrency, tmp_path / f"worker{len(workers)}.log"
        )
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


# -- cesod ------------------------------------------------------------------------------------------
@pytest.fixture
def start_cesod(ceso_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start cesod processes for a test (``start_cesod(CESO_CESOD__MAX_BATCH="3")``); all stopped after."""
    started: list[Cesod] = []

    def start(client_tls: Any = None, **env: str) -> Cesod:
        access = tmp_path / f"cesod-access{len(started)}.log"
        env = {**ceso_env, "CESO_CESOD__ACCESS_LOG": str(access), **env}
        daemon = Cesod(env, tmp_path / f"cesod{len(started)}.log", access, client_tls=client_tls)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
