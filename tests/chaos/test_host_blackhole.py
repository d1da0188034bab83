"""A host that accepts connections and never answers: every host call ends at its deadline.

A TCP proxy in front of the simulator black-holes it (accepts, reads, never answers). With
``esxi_timeout_s`` set low, a read command exits 6 (host unreachable) within a few deadlines, and
a create caught mid-way fails with the host-unreachable cause, its cleanup left pending in
``job status``; once the host answers again, nothing the job made is left on it (read with pyVmomi
and from the datastore directory on disk).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CESO_BIN, Cli, unique
from tests.support.proxy import FaultProxy
from tests.support.simulator import SimulatorHost
from tests.support.vms import make_template, vm_names

TIMEOUT_S = 3.0
#: A read may take a login, a request and one retry, each bounded by the deadline.
READ_BOUND_S = 4 * TIMEOUT_S + 5

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def holed(
    cli: Cli, sim_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FaultProxy, SimulatorHost]]:
    sim: SimulatorHost = sim_factory(extra_args=("-delay", "CreateVM_Task=1500"))
    proxy = FaultProxy((sim.host, sim.port))
    monkeypatch.setenv("CESO_ESXI_TIMEOUT_S", str(TIMEOUT_S))
    cli.env["CESO_ESXI_TIMEOUT_S"] = str(TIMEOUT_S)
    name = unique("hole")
    url = f"http://127.0.0.1:{proxy.port}/sdk"
    added = cli("host", "add", name, "--url", url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    yield name, proxy, sim
    proxy.close()


def test_a_read_of_a_silent_host_exits_6_within_its_deadline(holed: tuple[str, FaultProxy, Any]) -> None:
    name, proxy, _ = holed
    proxy.blackhole()
    started = time.monotonic()
    proc = subprocess.run(
        [str(CESO_BIN), "vm", "list", "--host", name],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started
    assert proc.returncode == 6, (proc.returncode, proc.stderr)
    assert "unreachable" in proc.stderr
    assert took < READ_BOUND_S, took


def test_a_create_caught_by_a_silent_host_fails_with_the_cause_and_cleans_up_later(
    cli: Cli, holed: tuple[str, FaultProxy, SimulatorHost], start_worker: Any
) -> None:
    name, proxy, sim = holed
    si = sim.connect()
    template = unique("tmpl")
    make_template(si, sim.datastore_dir(), template, os.urandom(256 << 10))
    assert cli("template", "add", template, "--host", name).exit_code == 0
    before = (vm_names(si), sorted(p.name for p in sim.datastore_dir().iterdir()))
    # A retry window shorter than one deadline: the first fault of "create VM" is its last.
    start_worker(
        name,
        env={
            "CESO_ESXI_TIMEOUT_S": str(TIMEOUT_S),
            "CESO_JOBS__STALE_AFTER_S": "2",
            "CESO_JOBS__HOST_RETRY_S": str(TIMEOUT_S - 1),
        },
    )
    new = unique("new")
    job_id = cli("--json", "vm", "create", new, "--template", template, "--host", name, "--no-wait").json()[
        "id"
    ]
    deadline = time.monotonic() + 60
    while cli("--json", "job", "status", job_id).json()["current_step"] != "create VM":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proxy.blackhole()  # from now on the host answers nothing, on open connections or new ones
    started = time.monotonic()
    waited = cli("--json", "job", "wait", job_id, "--timeout", "60")
    took = time.monotonic() - started
    job = waited.json()
    assert job["state"] == "failed", job
    assert waited.exit_code == 6, (waited.exit_code, job["error"])
    assert job["error"]["code"] == "host_unreachable" and "host unreachable" in job["error"]["message"]
    assert [s["name"] for s in job["steps"] if s["state"] == "failed" and not s.get("cleanup")] == [
        "create VM"
    ]
    assert took < 4 * TIMEOUT_S + 10, took
    cleanup = [s for s in job["steps"] if s.get("cleanup")]
    assert [(s["name"], s["state"], s.get("pending")) for s in cleanup] == [
        ("clean up after failure", "failed", True)
    ]
    assert job["result"] == {"pending_cleanup": ["clean up after failure"]}
    assert new in vm_names(si) or (sim.datastore_dir() / new).exists()  # left, for now

    proxy.restore()  # the host answers again: a worker's recovery retries the pending cleanup
    deadline = time.monotonic() + 60
    while (job := cli("--json", "job", "status", job_id).json())["result"]:
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert (vm_names(si), sorted(p.name for p in sim.datastore_dir().iterdir())) == before
    assert (job["state"], job["error"]["code"]) == ("failed", "host_unreachable")
    assert job["steps"][-1]["name"] == "pending cleanup" and job["steps"][-1]["state"] == "succeeded"
