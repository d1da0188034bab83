"""The record follows the target: a hot backup whose set is complete when SQL fails, or whose
worker dies before the catalog says so, ends ``succeeded`` with its set cataloged, not discarded.

The moment is made exact with PostgreSQL itself: the test holds the set's catalog row
(``SELECT ... FOR UPDATE`` on a connection of its own) once the disks are being copied, so the
job's last step, "catalog completed", waits on it with every object and the manifest at the
target. Then:

- PostgreSQL drops the write's connection and answers again: the same delivery reads the set
  back at the target and catalogs it (``reconciled``);
- PostgreSQL is cut (the job's connections go through a proxy that resets them): the job is
  reconciled in place or its next delivery adopts the set;
- the worker is SIGKILLed: the next delivery adopts the set rather than copying it again.

What is left is read independently: the target's directory (one set, its files untouched by a
second attempt), the snapshots of the VM with pyVmomi, the catalog and ``backup verify``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, Worker, unique
from tests.support.chaos import job_rows, repoint, wait_terminal
from tests.support.proxy import FaultProxy
from tests.support.vms import make_template, snapshot_names, vm_by_name

#: Relay and claims of the test's workers: a pass a second, a dead run's claim taken after 3 s.
TUNING = {
    "CESO_JOBS__RELAY_INTERVAL_S": "1",
    "CESO_JOBS__REPUBLISH_AFTER_S": "3",
    "CESO_JOBS__STALE_AFTER_S": "3",
    "CESO_JOBS__HEARTBEAT_S": "0.5",
    "CESO_LOCKS__TTL_S": "3",
}

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass
class Bed:
    cli: Cli
    direct: str  # PostgreSQL, not through the proxy
    proxy: FaultProxy
    si: Any
    datastore_dir: Path
    store: Path
    target: str
    host: str
    start: Any

    def backup(self, vm: str) -> str:
        out = self.cli("--json", "backup", "create", vm, "--target", self.target, "--no-wait")
        assert out.exit_code == 0, out.stdout + out.stderr
        return str(out.json()["id"])

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file at the target: size and modification time (ns)."""
        return {
            str(p.relative_to(self.store)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in self.store.rglob("*")
            if p.is_file()
        }


@pytest.fixture
def bed(
    cli: Cli, ceso_env: dict[str, str], sim_factory: Any, start_worker: Any, tmp_path: Path
) -> Iterator[Bed]:
    direct = ceso_env["CESO_DATABASE_URL"]
    parts = urlsplit(direct)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    repoint(
        ceso_env,
        **TUNING,
        CESO_DATABASE_URL=parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl(),
    )
    sim = sim_factory()
    host = unique("bk")
    added = cli("host", "add", host, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    si = sim.connect()
    yield Bed(cli, direct, proxy, si, sim.datastore_dir(), store, target, host, lambda: start_worker(host))
    proxy.close()


def _make_vm(bed: Bed) -> str:
    """A running VM with a 4 MiB disk: its backup is hot (a temporary snapshot)."""
    name = unique("src")
    make_template(bed.si, bed.datastore_dir, name, os.urandom(4 << 20)).PowerOnVM_Task()
    return name


class HeldRow:
    """The set's catalog row held by the test (``FOR UPDATE``): the job's catalog write waits."""

    def __init__(self, url: str, set_id: str) -> None:
        self.engine = sa.create_engine(url)
        self.conn = self.engine.connect()
        self.tx = self.conn.begin()
        held = self.conn.execute(
            sa.text("SELECT id FROM backup_sets WHERE id = :id FOR UPDATE"), {"id": set_id}
        ).all()
        assert held, f"no catalog row for {set_id} yet"

    def release(self) -> None:
        self.tx.rollback()
        self.conn.close()
        self.engine.dispose()


def _wait_step(bed: Bed, job_id: str, done: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not done(row := job_rows(bed.direct, [job_id])[job_id]):
        assert row["state"] in ("queued", "running"), row
        assert time.monotonic() < deadline, f"never {what}: {row}"
        time.sleep(0.05)


WAITING = (
    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
    "AND datname = current_database() AND pid <> pg_backend_pid()"
)


def _hold_at_catalog_write(bed: Bed, job_id: str) -> HeldRow:
    """Hold the set's row while the disks are copied; return once the job's catalog write waits
    on it (its step started, and its statement waits on the row: ``pg_stat_activity``)."""
    _wait_step(bed, job_id, lambda r: (r["current_step"] or "").startswith("copy"), "copying")
    held = HeldRow(bed.direct, job_id)
    try:
        _wait_step(bed, job_id, lambda r: r["current_step"] == "catalog completed", "at the catalog write")
        deadline = time.monotonic() + 30
        while not held.conn.execute(sa.text(WAITING)).all():
            assert time.monotonic() < deadline, "the catalog write never waited on the row"
            time.sleep(0.05)
    except BaseException:
        held.release()
        raise
    return held


def _steps(row: dict[str, Any]) -> list[dict[str, Any]]:
    steps = row["steps"]
    return json.loads(steps) if isinstance(steps, str) else list(steps)


def _result(row: dict[str, Any]) -> dict[str, Any]:
    result = row["result"]
    return json.loads(result) if isinstance(result, str) else dict(result)


def _check_set(bed: Bed, vm: str, job_id: str, row: dict[str, Any], *, files_before: dict[str, Any]) -> None:
    """The job succeeded; its one set is cataloged, verifies, was not copied again; no snapshot."""
    assert row["state"] == "succeeded", (row["error_code"], _steps(row))
    assert _result(row)["backup_id"] == job_id
    sets = bed.cli("--json", "backup", "list", "--vm", vm).json()
    assert [(s["id"], s["status"]) for s in sets] == [(job_id, "completed")]
    assert bed.files() == files_before  # the same objects, not written again
    assert {p.split("/")[1] for p in files_before} == {job_id}  # one set, the job's
    verified = bed.cli("--json", "backup", "verify", job_id)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert verified.json()["status"] == "verified"
    assert snapshot_names(bed.si, vm_by_name(bed.si, vm)) == []
    copies = [s for s in _steps(row) if s["name"].startswith("copy")]
    assert len(copies) == len(files_before) - 1, "a file was copied twice"  # all but the manifest


def test_sql_cut_while_a_hot_backup_writes_its_catalog(bed: Bed) -> None:
    """PostgreSQL is cut while the job's catalog write waits: the set is complete at the target.
    Once SQL answers, the job is succeeded (reconciled in place, or adopted by its next delivery)."""
    worker: Worker = bed.start()
    vm = _make_vm(bed)
    job_id = bed.backup(vm)
    held = _hold_at_catalog_write(bed, job_id)
    files = bed.files()
    assert any(p.endswith("manifest.json") for p in files)
    try:
        bed.proxy.cut()
    finally:
        held.release()
    time.sleep(4)  # the catalog write fails, and so does the outcome's
    bed.proxy.restore()
    back = time.monotonic()
    row = wait_terminal(bed.direct, [job_id], timeout=60)[job_id]
    done_s = time.monotonic() - back
    _check_set(bed, vm, job_id, row, files_before=files)
    adopted = any(s.get("adopted") for s in _steps(row))
    reconciled = "reconciled" in _result(row)
    assert adopted or reconciled, _steps(row)
    assert "database unreachable" in worker.output()
    print(
        f"\nMATRIX | SQL cut during a hot backup's catalog write | runs 1 | jobs lost 0 | "
        f"sets discarded 0 | copied twice 0 | snapshots left 0 | adopted {int(adopted)}, "
        f"reconciled in place {int(reconciled)} | done {done_s:.1f} s after SQL came back"
    )


def test_sql_connection_dropped_during_a_hot_backups_catalog_write(bed: Bed) -> None:
    """PostgreSQL drops the connection of the job's catalog write (``pg_terminate_backend``) and
    answers again at once: the same delivery reads the set back at the target, catalogs it and
    ends ``succeeded`` with ``reconciled: database_unreachable``."""
    bed.start()
    vm = _make_vm(bed)
    job_id = bed.backup(vm)
    held = _hold_at_catalog_write(bed, job_id)
    files = bed.files()
    try:
        dropped = held.conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM ({WAITING}) w")).all()
    finally:
        held.release()
    assert dropped == [(True,)], dropped  # the job's write, waiting on the row
    row = wait_terminal(bed.direct, [job_id], timeout=60)[job_id]
    _check_set(bed, vm, job_id, row, files_before=files)
    assert _result(row)["reconciled"] == "database_unreachable", _steps(row)
    assert row["attempts"] == 1
    reconcile = [s for s in _steps(row) if s["name"] == "reconcile with host"]
    assert [s.get("complete") for s in reconcile] == [True], _steps(row)
    print(
        "\nMATRIX | SQL connection dropped during a hot backup's catalog write | runs 1 | jobs lost 0 | "
        "sets discarded 0 | copied twice 0 | snapshots left 0 | reconciled in place 1"
    )


def test_worker_killed_at_a_hot_backups_catalog_write(bed: Bed) -> None:
    """The worker is SIGKILLed while the job's catalog write waits: its next delivery finds the
    job's complete set at the target and adopts it instead of copying it again."""
    worker: Worker = bed.start()
    vm = _make_vm(bed)
    job_id = bed.backup(vm)
    held = _hold_at_catalog_write(bed, job_id)
    files = bed.files()
    try:
        worker.kill()
    finally:
        held.release()
    killed = time.monotonic()
    bed.start()
    row = wait_terminal(bed.direct, [job_id], timeout=60)[job_id]
    done_s = time.monotonic() - killed
    _check_set(bed, vm, job_id, row, files_before=files)
    assert row["attempts"] == 2, row
    adopt = [s for s in _steps(row) if s["name"] == "adopt set"]
    assert [s.get("adopted") for s in adopt] == [True], _steps(row)
    print(
        f"\nMATRIX | worker killed at a hot backup's catalog write | runs 1 | jobs lost 0 | "
        f"sets discarded 0 | copied twice 0 | snapshots left 0 | adopted 1 | "
        f"done {done_s:.1f} s after the kill"
    )
