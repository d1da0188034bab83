"""A whole worker SIGKILLed (main process and prefork children) at two moments of a ``vm create``:
after its claim (a restarted worker reclaims the job of its dead process within 10 s, without the
stale period or the broker's visibility timeout), and between receiving the message and claiming
the job (the outbox relay publishes it again). Each VM ends on the host exactly once."""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.chaos import (
    assert_record_matches_host,
    children_of,
    job_rows,
    orphan_dirs,
    repoint,
    wait_terminal,
)
from tests.support.simulator import SimulatorHost
from tests.vm.conftest import TemplateBed

REPEAT = int(os.environ.get("CESO_CHAOS_REPEAT", "2"))
#: The shipped stale period (a restarted worker must not need it), a relay pass a second, queued
#: jobs due again 3 s after their publish, and short lock leases (the dead run's lapse sooner).
TUNING = {
    "CESO_JOBS__STALE_AFTER_S": "60",
    "CESO_JOBS__RELAY_INTERVAL_S": "1",
    "CESO_JOBS__REPUBLISH_AFTER_S": "3",
    "CESO_LOCKS__TTL_S": "3",
}
RECLAIM_BOUND_S = 10.0

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def sim(sim_factory: Any) -> SimulatorHost:
    """This module's simulator copies disks and creates VMs in 1.5 s each, so the test catches a
    create mid-way on a loaded machine (on the shared one a create can end within one poll)."""
    host: SimulatorHost = sim_factory(extra_args=("-delay", "CopyVirtualDisk_Task=1500,CreateVM_Task=1500"))
    return host


@pytest.fixture
def tuned(ceso_env: dict[str, str]) -> dict[str, str]:
    """The test's settings, in place before ``bed`` starts its worker."""
    repoint(ceso_env, **TUNING)
    return ceso_env


def _create(cli: Cli, bed: TemplateBed, name: str) -> str:
    result = cli("--json", "vm", "create", name, "--template", bed.template, "--no-wait")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["id"])


def test_restarted_worker_reclaims_its_dead_workers_job_within_10s(
    cli: Cli, tuned: dict[str, str], bed: TemplateBed, start_worker: Any
) -> None:
    url = tuned["CESO_DATABASE_URL"]
    worker, recoveries = bed.worker, []
    for run in range(REPEAT):
        prefix = unique(f"wk{run}")
        name = f"{prefix}-vm"
        job_id = _create(cli, bed, name)
        deadline = time.monotonic() + 60
        while (row := job_rows(url, [job_id])[job_id])["state"] != "running" or not _steps(url, job_id):
            assert row["state"] not in {"succeeded", "failed"}, row
            assert time.monotonic() < deadline, "the create never started"
            time.sleep(0.05)
        worker.kill()  # SIGKILL to the whole group: no ack, no cleanup, no goodbye
        worker = start_worker(bed.host)
        restarted = time.monotonic()
        while (row := job_rows(url, [job_id])[job_id])["attempts"] < 2 and row["state"] == "running":
            assert time.monotonic() - restarted < 30, "not reclaimed in 30 s"
            time.sleep(0.1)
        recoveries.append(time.monotonic() - restarted)
        rows = wait_terminal(url, [job_id], timeout=90)
        assert rows[job_id]["state"] == "succeeded", rows
        assert rows[job_id]["attempts"] == 2, rows  # one dead claim, one live one: never two live
        assert_record_matches_host(bed.si, bed.datastore_dir, rows, {job_id: name})
        assert orphan_dirs(bed.si, bed.datastore_dir, prefix) == []
    print(
        f"\nworker SIGKILL mid-create, restarted: {REPEAT} runs, reclaimed after "
        f"{', '.join(f'{s:.1f}' for s in recoveries)} s (bound {RECLAIM_BOUND_S:.0f} s), 0 lost, 0 duplicate VMs"
    )
    assert max(recoveries) <= RECLAIM_BOUND_S


def _steps(url: str, job_id: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            steps = conn.execute(sa.text("SELECT steps FROM jobs WHERE id = :i"), {"i": job_id}).scalar()
    finally:
        engine.dispose()
    return bool(steps)


def test_worker_killed_between_receiving_and_claiming(
    cli: Cli, tuned: dict[str, str], bed: TemplateBed, start_worker: Any
) -> None:
    """The worker's prefork children are stopped (SIGSTOP) so the message is received but the job
    never claimed, then the whole worker is killed: the message is unacknowledged in Redis until
    the visibility timeout (an hour), the row queued. A new worker's relay publishes it again."""
    url = tuned["CESO_DATABASE_URL"]
    worker, waits = bed.worker, []
    for run in range(REPEAT):
        prefix = unique(f"rc{run}")
        name = f"{prefix}-vm"
        for child in children_of(worker.proc.pid):
            os.kill(child, signal.SIGSTOP)
        job_id = _create(cli, bed, name)
        deadline = time.monotonic() + 30
        while not re.search(rf"ceso\.run_job\[{job_id}\] received", worker.output()):
            assert time.monotonic() < deadline, "the message never reached the worker"
            time.sleep(0.05)
        assert job_rows(url, [job_id])[job_id]["state"] == "queued"
        worker.kill()
        worker = start_worker(bed.host)
        restarted = time.monotonic()
        rows = wait_terminal(url, [job_id], timeout=60)
        waits.append(time.monotonic() - restarted)
        assert rows[job_id]["state"] == "succeeded", rows
        assert_record_matches_host(bed.si, bed.datastore_dir, rows, {job_id: name})
        assert orphan_dirs(bed.si, bed.datastore_dir, prefix) == []
    print(
        f"\nworker SIGKILL between receipt and claim: {REPEAT} runs, job succeeded "
        f"{', '.join(f'{s:.1f}' for s in waits)} s after the restart, 0 lost"
    )
