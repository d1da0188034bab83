"""Hot backups, each meeting one fault while it copies: the worker SIGKILLed (and started again),
the host cut for a few seconds, Redis restarted empty (no persistence), or PostgreSQL cut for a few
seconds. The faults take turns; ``CESO_CHAOS_REPEAT`` rounds of the four (one in CI; 25 for the
figure of docs/benchmarks.md: 100 faulted backups).

Every run is checked on the catalog read from SQL, the target's directory and the source VM read
with pyVmomi: the job ended (none lost), a succeeded one has its completed set with every file at
the target, a failed one left no pending set and no file, and the source has no snapshot left.
The share of backups that succeeded after their retries, resumed reads and redeliveries must be
99 % or more for the worker kill and the SQL cut. A host cut and a Redis restarted empty are not
always outlived (:data:`UNRETRIED`): the backup then fails cleanly, with a connection fault or
``lock_lost``; their figures are printed with the others.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Cli, Worker, unique
from tests.support.chaos import (
    TERMINAL,
    assert_backup_matches_target,
    job_rows,
    repoint,
    wait_terminal,
)
from tests.support.proxy import FaultProxy
from tests.support.redis_server import PrivateRedis
from tests.support.simulator import SimulatorHost
from tests.support.vms import make_template, snapshot_names, vm_by_name

REPEAT = int(os.environ.get("CESO_CHAOS_REPEAT", "1"))
OUTAGE_S = 3.0
TUNING = {
    "CESO_JOBS__STALE_AFTER_S": "60",
    "CESO_JOBS__RELAY_INTERVAL_S": "1",
    "CESO_JOBS__REPUBLISH_AFTER_S": "3",
    "CESO_LOCKS__TTL_S": "3",
}

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass
class Bed:
    cli: Cli
    direct_url: str  # PostgreSQL itself, for the test's reads
    host: str
    si: Any
    vm: str
    store: Path
    target: str
    host_proxy: FaultProxy
    sql_proxy: FaultProxy
    redis: PrivateRedis
    start_worker: Callable[..., Worker]
    worker: Worker


@pytest.fixture
def fault_bed(
    cli: Cli, ceso_env: dict[str, str], sim_factory: Any, start_worker: Any, tmp_path: Path
) -> Iterator[Bed]:
    direct = ceso_env["CESO_DATABASE_URL"]
    parts = urlsplit(direct)
    sql_proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    redis = PrivateRedis(tmp_path / "redis")
    repoint(
        ceso_env,
        CESO_DATABASE_URL=parts._replace(netloc=f"{parts.username}@127.0.0.1:{sql_proxy.port}").geturl(),
        CESO_REDIS_URL=redis.url,
        **TUNING,
    )
    # Every copy of a disk chunk takes a while: each fault lands while the backup copies.
    sim: SimulatorHost = sim_factory(extra_args=("-delay", "CreateSnapshot_Task=300"))
    host_proxy = FaultProxy((sim.host, sim.port))
    host = unique("bf")
    url = f"http://127.0.0.1:{host_proxy.port}/sdk"
    added = cli("host", "add", host, "--url", url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    si = sim.connect()
    vm = unique("src")
    make_template(si, sim.datastore_dir(), vm, os.urandom(2 << 20) + b"\0" * (2 << 20)).PowerOnVM_Task()
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    bed = Bed(cli, direct, host, si, vm, store, target, host_proxy, sql_proxy, redis, start_worker,
              start_worker(host))  # fmt: skip
    yield bed
    bed.worker.stop()
    host_proxy.close()
    sql_proxy.close()
    redis.stop()


def _kill_worker(bed: Bed) -> None:
    bed.worker.kill()
    bed.worker = bed.start_worker(bed.host)


def _cut_host(bed: Bed) -> None:
    bed.host_proxy.cut()
    time.sleep(OUTAGE_S)
    bed.host_proxy.restore()


def _restart_redis(bed: Bed) -> None:
    bed.redis.restart(down_s=1.0)
    if bed.worker.proc.poll() is not None:  # a worker that gave up exits non-zero: systemd restarts it
        bed.worker = bed.start_worker(bed.host)


def _cut_sql(bed: Bed) -> None:
    bed.sql_proxy.cut()
    time.sleep(OUTAGE_S)
    bed.sql_proxy.restore()


HOST_CUT = f"host cut {OUTAGE_S:.0f} s mid-copy"
REDIS_EMPTY = "Redis restarted empty mid-copy"
#: Faults a backup does not always outlast yet, and the errors it may fail with then: a host cut is
#: outlived when it strikes a disk's read (resumed from the byte it reached), not when it strikes a
#: call of a step that is not repeated (a connection fault); a lock lost with Redis's data stops
#: the job (``lock_lost``, docs/architecture.md), and a backup is not run again for it.
UNRETRIED = {
    HOST_CUT: {"connection_lost", "transient", "http_error", "host_unreachable"},
    REDIS_EMPTY: {"lock_lost"},
}
FAULTS: dict[str, Callable[[Bed], None]] = {
    "worker SIGKILL mid-copy": _kill_worker,
    HOST_CUT: _cut_host,
    REDIS_EMPTY: _restart_redis,
    f"SQL cut {OUTAGE_S:.0f} s mid-copy": _cut_sql,
}


def _wait_copying(bed: Bed, job_id: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = job_rows(bed.direct_url, [job_id])[job_id]
        if any(str(s.get("name")).startswith("copy ") for s in row["steps"] or []):
            return
        assert row["state"] not in TERMINAL, row
        assert time.monotonic() < deadline, f"{job_id} never started copying: {row}"
        time.sleep(0.03)


@pytest.mark.timeout(120 + 180 * REPEAT)  # a round of the four faults takes about a minute
def test_backups_under_faults(fault_bed: Bed) -> None:
    bed = fault_bed
    runs: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    failures: list[tuple[Any, ...]] = []
    started = time.monotonic()
    for _round in range(REPEAT):
        for fault, inject in FAULTS.items():
            result = bed.cli("--json", "backup", "create", bed.vm, "--target", bed.target, "--no-wait")
            assert result.exit_code == 0, result.stdout + result.stderr
            job_id = str(result.json()["id"])
            _wait_copying(bed, job_id)
            inject(bed)
            row = wait_terminal(bed.direct_url, [job_id], timeout=240)[job_id]  # lost: fails here
            runs[fault] += 1
            assert row["error_code"] != "internal_error", row
            assert_backup_matches_target(bed.direct_url, bed.store, row)
            source = vm_by_name(bed.si, bed.vm)
            assert source is not None, f"{fault}: the source VM is gone"
            assert snapshot_names(bed.si, source) == [], f"{fault}: orphan snapshot on the source"
            assert str(source.runtime.powerState) == "poweredOn"
            print(f"run {sum(runs.values())}: {fault}: {row['state']} ({row['error_code']})", flush=True)
            if row["state"] == "succeeded":
                succeeded[fault] += 1
            else:
                errors = [
                    (s["name"], s.get("error"), s.get("retries")) for s in row["steps"] if s.get("error")
                ]
                failures.append((fault, row["error_code"], row["attempts"], errors))
    total, ok = sum(runs.values()), sum(succeeded.values())
    lines = [f"  {fault}: {succeeded[fault]}/{n} succeeded" for fault, n in runs.items()]
    print(
        f"\nMATRIX | hot backup with a fault mid-copy | runs {total} | jobs lost 0 | records disagreeing 0 | "
        f"duplicate VMs 0 | orphan snapshots 0, partial points 0 | succeeded {ok}/{total} "
        f"({100 * ok / total:.1f} %) in {time.monotonic() - started:.0f} s\n"
        + "\n".join(lines)
        + (f"\n  failed: {failures}" if failures else "")
    )
    retried = [f for f in runs if f not in UNRETRIED]
    assert sum(succeeded[f] for f in retried) / sum(runs[f] for f in retried) >= 0.99, failures
    # The others fail cleanly (checked above for every run) with their known errors; any other
    # failure is a regression.
    assert all(code in UNRETRIED.get(f, set()) for f, code, *_ in failures), failures
