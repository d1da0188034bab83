"""A slow host: every chunk to and from the host through a loopback proxy (FaultProxy.slow) is held
back, as a host far away or on a thin link would be.

- Slow, within the job's time limit: a ``vm create`` and a hot ``backup create`` (whose disk
  bytes come through the same proxy) succeed; one VM, one completed set, no snapshot left.
- Slower than the job's time limit (a soft limit of a few seconds): the create fails with
  ``time_limit`` and its cleanup leaves nothing on the host, through the same slow host.

Every outcome is checked on the host with pyVmomi (straight to the simulator, not through the
proxy), the datastore and target directories and the catalog in SQL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.chaos import (
    assert_backup_matches_target,
    assert_record_matches_host,
    job_rows,
    orphan_dirs,
    repoint,
    wait_terminal,
)
from tests.support.proxy import FaultProxy
from tests.support.simulator import SimulatorHost
from tests.support.vms import make_template, snapshot_names, vm_by_name, vm_names

#: Each chunk either way 50 ms late, at most 2 MiB/s: a create takes several times as long.
SLOW = {"delay_s": 0.05, "rate": 2 << 20}

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass
class Bed:
    cli: Cli
    url: str
    host: str
    sim: SimulatorHost
    si: Any
    proxy: FaultProxy
    template: str
    store: Path
    target: str


@pytest.fixture
def slow_bed(cli: Cli, ceso_env: dict[str, str], sim_factory: Any, tmp_path: Path) -> Iterator[Bed]:
    repoint(ceso_env, CESO_LOCKS__TTL_S="3")
    sim: SimulatorHost = sim_factory()
    proxy = FaultProxy((sim.host, sim.port))
    host = unique("slow")
    url = f"http://127.0.0.1:{proxy.port}/sdk"
    added = cli("host", "add", host, "--url", url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    si = sim.connect()
    template = unique("tmpl")
    make_template(si, sim.datastore_dir(), template, os.urandom(1 << 20))
    assert cli("template", "add", template, "--host", host).exit_code == 0
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    yield Bed(cli, ceso_env["CESO_DATABASE_URL"], host, sim, si, proxy, template, store, target)
    proxy.close()


def _submit(bed: Bed, *args: str) -> str:
    result = bed.cli("--json", *args, "--no-wait")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["id"])


def test_a_slow_host_within_the_time_limit(slow_bed: Bed, start_worker: Any) -> None:
    bed = slow_bed
    start_worker(bed.host)
    running = unique("src")
    make_template(bed.si, bed.sim.datastore_dir(), running, os.urandom(2 << 20)).PowerOnVM_Task()
    bed.proxy.slow(**SLOW)
    started = time.monotonic()
    name = unique("slowvm")
    create_id = _submit(bed, "vm", "create", name, "--template", bed.template)
    rows = wait_terminal(bed.url, [create_id], timeout=300)
    created_s = time.monotonic() - started
    assert rows[create_id]["state"] == "succeeded", rows
    assert_record_matches_host(bed.si, bed.sim.datastore_dir(), rows, {create_id: name})
    assert vm_names(bed.si).count(name) == 1
    started = time.monotonic()
    backup_id = _submit(bed, "backup", "create", running, "--target", bed.target)
    row = wait_terminal(bed.url, [backup_id], timeout=300)[backup_id]
    backed_up_s = time.monotonic() - started
    assert row["state"] == "succeeded", row
    assert_backup_matches_target(bed.url, bed.store, row)
    assert snapshot_names(bed.si, vm_by_name(bed.si, running)) == []
    assert bed.proxy.chunks > 0
    print(
        f"\nMATRIX | host slow ({SLOW['delay_s'] * 1000:.0f} ms a chunk, {SLOW['rate'] >> 20} MiB/s) | runs 2 | "
        f"jobs lost 0 | records disagreeing 0 | duplicate VMs 0 | orphans 0 | create {created_s:.1f} s, "
        f"hot backup {backed_up_s:.1f} s, both succeeded"
    )


def test_a_host_slower_than_the_time_limit(slow_bed: Bed, start_worker: Any) -> None:
    """A soft limit of 6 s on the worker; the host slows down (1 s a chunk) once the create
    makes its directory: the limit stops the job mid-way, and its cleanup (through the same slow
    host, before the hard limit) removes what it made."""
    bed = slow_bed
    start_worker(bed.host, env={"CESO_JOBS__SOFT_TIME_LIMIT_S": "6", "CESO_JOBS__HARD_TIME_LIMIT_S": "120"})
    before = sorted(p.name for p in bed.sim.datastore_dir().iterdir())
    name = unique("tooslow")
    started = time.monotonic()
    job_id = _submit(bed, "vm", "create", name, "--template", bed.template)
    deadline = time.monotonic() + 60
    while not any(s["name"] == "make directory" for s in job_rows(bed.url, [job_id])[job_id]["steps"] or []):
        assert time.monotonic() < deadline, "the create never started"
        time.sleep(0.03)
    bed.proxy.slow(delay_s=1.0)  # the host slows down as the VM is being made
    rows = wait_terminal(bed.url, [job_id], timeout=180)
    ended_s = time.monotonic() - started
    row = rows[job_id]
    status = bed.cli("--json", "job", "status", job_id).json()
    assert (row["state"], row["error_code"]) == ("failed", "time_limit"), (status["error"], status["steps"])
    struck = next((s["name"] for s in status["steps"] if s["state"] == "failed"), "between steps")
    assert_record_matches_host(bed.si, bed.sim.datastore_dir(), rows, {job_id: name})
    assert orphan_dirs(bed.si, bed.sim.datastore_dir(), name) == []
    assert sorted(p.name for p in bed.sim.datastore_dir().iterdir()) == before
    print(
        f"\nMATRIX | host slower than the job's time limit (soft 6 s) | runs 1 | jobs lost 0 | "
        f"records disagreeing 0 | duplicate VMs 0 | orphans 0 | failed time_limit in {struck!r}, cleaned "
        f"up, {ended_s:.1f} s after submit"
    )
