"""Benchmark ceso's job queue: latency with an idle worker, and jobs/s through one and four host queues.

What it measures, and why: every change in ceso is a job (SQL row, Redis message, Celery worker,
claim, steps, outcome), so the queue's own cost is added to every operation. The job is
``host.ping`` (log in once per worker child, then one ``CurrentTime()`` call), so nearly all
its time is queue overhead. The baseline, in the same run against the same simulator, is the
same number of bare pyVmomi ``CurrentTime()`` calls in one loop on one logged-in session.

Setup: four simulated hosts, each registered in a temporary ceso installation (SQLite file, or
a temporary PostgreSQL database with ``--database postgresql``; Redis DB 14), and one
``ceso worker --host X --concurrency 2`` process per host. Jobs are submitted in this process
with ``ceso.jobs.submit.submit_job``; completion is seen by polling the job rows. Each worker
first runs a few warm-up jobs (so its children are logged in).

* latency: ``--latency-jobs`` jobs one at a time on an idle host; from the rows, queued
  (started_at - created_at) and total (finished_at - created_at); and the wall time from calling
  submit_job to seeing the row finished (polled every 5 ms);
* throughput: ``--jobs`` jobs submitted back to back, to one host, then spread over four hosts;
  jobs/s = jobs / (last finished_at - first created_at);
* diagnosis: the same jobs submitted to a host that has no worker and run in this process with
  ``ceso.jobs.runner.run_job`` (no Celery delivery, no worker process), with the SQL statements
  and commits each job makes.

Run: .venv/bin/python benchmarks/queue_latency.py [--jobs 200] [--latency-jobs 30] [--database sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import (  # noqa: E402
    CESO,
    REDIS_URL,
    SIM_PASSWORD,
    ceso_env,
    exit_on_sigterm,
    log,
    median,
    percentile,
    print_table,
    register_host,
)

POLL_S = 0.005


@contextlib.contextmanager
def worker(env: dict[str, str], host: str, log_path: Path, concurrency: int = 2) -> Iterator[None]:
    """A ``ceso worker`` process group for ``host``, ready on entry, stopped (group-wide) on exit."""
    cmd = [str(CESO), "worker", "--host", host, "--concurrency", str(concurrency), "--loglevel", "info"]
    with log_path.open("wb") as out:
        # Metrics stay on (the default) but on a free port: four workers cannot share the default one.
        env = {**env, "CESO_METRICS__WORKER_PORT": "0"}
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while " ready." not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"worker for {host} not ready:\n{log_path.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.1)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def bare_current_time(url: str, count: int) -> float:
    """Seconds for ``count`` pyVmomi CurrentTime() calls in one loop on one logged-in session."""
    from pyVim import connect as pyvim_connect

    connect: Any = pyvim_connect  # its functions carry no annotations
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    si = connect.SmartConnect(protocol="http", host=host, port=int(port), user="root", pwd=SIM_PASSWORD)
    try:
        si.CurrentTime()
        start = time.perf_counter()
        for _ in range(count):
            si.CurrentTime()
        return time.perf_counter() - start
    finally:
        connect.Disconnect(si)


def rows(engine: Any, ids: list[str]) -> list[Any]:
    from sqlmodel import Session, col, select

    from ceso.db.models import Job

    with Session(engine) as session:
        return list(session.exec(select(Job).where(col(Job.id).in_(ids))).all())


def wait_all(engine: Any, ids: list[str], timeout: float = 600) -> list[Any]:
    """Poll until every job has ended; return the rows. Raises if any failed or time runs out."""
    from ceso.db.models import TERMINAL_STATES

    deadline = time.monotonic() + timeout
    while True:
        found = rows(engine, ids)
        if len(found) == len(ids) and all(j.state in TERMINAL_STATES for j in found):
            bad = [
                f"{j.id} {j.state} {j.error_code}: {j.error_message}" for j in found if j.state != "succeeded"
            ]
            if bad:
                raise RuntimeError("jobs did not succeed:\n" + "\n".join(bad[:10]))
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not finished after {timeout}s")
        time.sleep(POLL_S if len(ids) == 1 else 0.05)


def submit(runtime: Any, hosts: list[str], count: int) -> list[str]:
    """Submit ``count`` host.ping jobs round-robin over ``hosts``, back to back; return their ids."""
    from ceso.hosts.specs import PingHost, ping_request
    from ceso.jobs.submit import submit_job

    return [
        submit_job(runtime, ping_request(PingHost(name=hosts[i % len(hosts)]), idempotency_key=None))[0].id
        for i in range(count)
    ]


def throughput(runtime: Any, hosts: list[str], count: int) -> tuple[float, float]:
    """(jobs/s from the rows, jobs/s of submit_job alone) for ``count`` jobs over ``hosts``."""
    start = time.perf_counter()
    ids = submit(runtime, hosts, count)
    submit_rate = count / (time.perf_counter() - start)
    done = wait_all(runtime.engine, ids)
    span = max(j.finished_at for j in done) - min(j.created_at for j in done)
    return count / span.total_seconds(), submit_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--latency-jobs", type=int, default=30)
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="a temporary SQLite file, or a temporary database on PostgreSQL at 127.0.0.1 (dropped after)",
    )
    args = parser.parse_args()
    exit_on_sigterm()

    from tests.support.simulator import start_hosts

    token = uuid.uuid4().hex[:6]
    names = [f"bench-{token}-{i}" for i in range(4)]
    spare = f"bench-{token}-noworker"  # same simulator as names[0]; no worker: for the diagnosis
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ceso-bench-")))
        env = ceso_env(tmp)
        if args.database == "postgresql":
            env["CESO_DATABASE_URL"] = stack.enter_context(pg_database(f"ceso_bench_{token}"))
        stack.callback(clean_redis, [*names, spare])
        sims = start_hosts(4)
        for sim in sims:
            stack.callback(sim.stop)
        log(f"simulators up; registering hosts {names[0]}..3 and starting 4 workers")
        for name, sim in zip(names, sims, strict=True):
            register_host(env, name, sim.url)
        register_host(env, spare, sims[0].url)
        for name in names:
            stack.enter_context(worker(env, name, tmp / f"worker-{name}.log"))

        os.environ.update({k: v for k, v in env.items() if k.startswith("CESO_") or k == "HOME"})
        from ceso.runtime import get_runtime

        runtime = get_runtime()
        stack.callback(runtime.close)
        log("warm-up: 4 jobs per host")
        wait_all(runtime.engine, submit(runtime, names * 4, 16))

        log(f"baseline: {args.jobs} bare CurrentTime() calls")
        bare_s = bare_current_time(sims[0].url, args.jobs)

        log(f"latency: {args.latency_jobs} jobs one at a time on {names[0]}")
        queued, total, wall, submit_s = [], [], [], []
        for _ in range(args.latency_jobs):
            start = time.perf_counter()
            (job_id,) = submit(runtime, names[:1], 1)
            submit_s.append(time.perf_counter() - start)
            (job,) = wait_all(runtime.engine, [job_id])
            wall.append(time.perf_counter() - start)
            queued.append((job.started_at - job.created_at).total_seconds())
            total.append((job.finished_at - job.created_at).total_seconds())

        log(f"throughput: {args.jobs} jobs on one host queue")
        one_rate, one_submit = throughput(runtime, names[:1], args.jobs)
        log(f"throughput: {args.jobs} jobs over four host queues")
        four_rate, four_submit = throughput(runtime, names, args.jobs)
        log(f"diagnosis: {args.latency_jobs} jobs submitted to a host without worker, run here with run_job")
        cost = in_process(runtime, spare, args.latency_jobs)
        log("stopping workers and simulators")

    per_call = bare_s / args.jobs
    ms = 1000.0
    print_table(
        f"host.ping latency, idle worker, {args.latency_jobs} jobs one at a time, {args.database} (ms)",
        ["measure", "p50", "p95", "max"],
        [
            [label, f"{median(s) * ms:.1f}", f"{percentile(s, 95) * ms:.1f}", f"{max(s) * ms:.1f}"]
            for label, s in [
                ("submit_job call (insert, commit, publish)", submit_s),
                ("queued: started_at - created_at", queued),
                ("total: finished_at - created_at", total),
                ("wall: submit_job call to row seen finished", wall),
            ]
        ]
        + [["baseline: one bare CurrentTime() call", f"{per_call * ms:.2f}", "-", "-"]],
    )
    print(
        "\nqueue overhead per job at idle (p50 wall - one bare call): "
        f"{(median(wall) - per_call) * ms:.1f} ms, {median(wall) / per_call:.0f}x a bare call"
    )
    print(
        f"\ndiagnosis: submit_job + run_job in this process, no worker: {cost.ms:.1f} ms per job "
        f"(median), {cost.statements:.0f} SQL statements and {cost.commits:.0f} commits per job: "
        + ", ".join(f"{k} {v:g}" for k, v in cost.by_table.items())
    )
    print_table(
        f"throughput, {args.jobs} host.ping jobs submitted back to back (one worker per host, concurrency 2, "
        f"{args.database})",
        ["path", "jobs/s", "ms per job", "vs bare loop", "submit_job alone (jobs/s)"],
        [
            ["bare pyVmomi CurrentTime() loop (baseline)", f"{1 / per_call:.0f}", f"{per_call * ms:.2f}", "1x", "-"],
            ["one host queue", f"{one_rate:.1f}", f"{ms / one_rate:.1f}", f"{(1 / per_call) / one_rate:.0f}x slower",
             f"{one_submit:.0f}"],
            ["four host queues", f"{four_rate:.1f}", f"{ms / four_rate:.1f}",
             f"{(1 / per_call) / four_rate:.0f}x slower", f"{four_submit:.0f}"],
        ],
    )  # fmt: skip


#: "SELECT … FROM t", "INSERT INTO t", "UPDATE t", "DELETE FROM t": the verb and the table t.
_STATEMENT = re.compile(
    r"^\s*(?:(SELECT)\b.*?\bFROM|(INSERT) INTO|(UPDATE)|(DELETE) FROM)\s+\"?(\w+)", re.I | re.S
)


@dataclass
class SqlCost:
    """What one job costs in this process: median ms, and SQL per job (by statement and table)."""

    ms: float
    statements: float
    commits: float
    by_table: dict[str, float]


def in_process(runtime: Any, host: str, count: int) -> SqlCost:
    """submit_job + run_job of ``count`` jobs in this process, SQL counted with SQLAlchemy events.

    ``host`` has no worker, so nothing else claims the job; its queue keeps the unread messages
    until :func:`clean_redis`.
    """
    import sqlalchemy as sa

    from ceso.jobs.runner import run_job

    tables: Counter[str] = Counter()
    commits = 0

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        m = _STATEMENT.match(statement)
        verb = next((g for g in m.groups()[:4] if g), "") if m else statement.split(maxsplit=1)[0]
        tables[f"{verb.upper()} {m.group(5)}" if m else verb.upper()] += 1

    def on_commit(*_: Any) -> None:
        nonlocal commits
        commits += 1

    def one() -> float:
        start = time.perf_counter()
        (job_id,) = submit(runtime, [host], 1)
        run_job(runtime, job_id)
        return time.perf_counter() - start

    one()  # logs this process in to the host
    sa.event.listen(runtime.engine, "before_cursor_execute", on_statement)
    sa.event.listen(runtime.engine, "commit", on_commit)
    try:
        times = [one() for _ in range(count)]
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", on_statement)
        sa.event.remove(runtime.engine, "commit", on_commit)
    by_table = {k: v / count for k, v in tables.most_common()}
    return SqlCost(median(times) * 1000, sum(tables.values()) / count, commits / count, by_table)


@contextlib.contextmanager
def pg_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database with ceso's schema; dropped on exit."""
    import sqlalchemy as sa

    from ceso.db.engine import make_engine
    from ceso.db.migrate import upgrade

    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def clean_redis(hosts: list[str]) -> None:
    """Delete this run's keys (queues and bindings of its uniquely named hosts). Never flushes:
    other benchmarks may share the DB; kombu's shared bookkeeping keys are left as they are."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for host in hosts:
        for key in client.scan_iter(match=f"*{host}*"):
            client.delete(key)


if __name__ == "__main__":
    main()
