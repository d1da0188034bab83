"""Creates under load and under failure: concurrency across hosts, a full datastore, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import devices_of, make_template, vm_by_name, vm_names


def _wait_all(cli: Cli, ids: list[str], timeout: float = 180) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    jobs: list[dict[str, Any]] = []
    for job_id in ids:
        left = max(1.0, deadline - time.monotonic())
        jobs.append(cli("--json", "job", "wait", job_id, "--timeout", str(left)).json())
    return jobs


def test_ten_concurrent_creates_on_two_hosts(cli: Cli, sim_factory: Any, start_worker: Any) -> None:
    hosts = []
    for i in range(2):
        sim: SimulatorHost = sim_factory()
        si = sim.connect()
        make_template(si, sim.datastore_dir(), "golden", b"golden disk\n" * 1000)
        name = f"h{i}"
        assert (
            cli(
                "host", "add", name, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n"
            ).exit_code
            == 0
        )
        assert cli("template", "add", "golden", "--host", name).exit_code == 0
        start_worker(name, concurrency=2)
        hosts.append((name, si))
    ids = []
    for i in range(10):
        host = hosts[i % 2][0]
        out = cli("--json", "vm", "create", f"vm{i:02d}", "--template", "golden", "--host", host, "--no-wait")
        assert out.exit_code == 0, out.stderr
        ids.append(out.json()["id"])
    jobs = _wait_all(cli, ids)
    assert [j["state"] for j in jobs] == ["succeeded"] * 10, [j["error"] for j in jobs]
    macs: list[str] = []
    for _host, si in hosts:
        names = [n for n in vm_names(si) if n != "golden"]
        assert len(names) == len(set(names)) == 5
        for name in names:
            macs += [n.macAddress for n in devices_of(vm_by_name(si, name), "VirtualEthernetCard")]
    assert len(macs) == len(set(macs)) == 10


@pytest.fixture
def tiny_datastore_sim(sim_factory: Any) -> Iterator[SimulatorHost]:
    """A simulator whose datastore is a 1 MiB tmpfs: copies fail for real with no space left."""
    sim: SimulatorHost = sim_factory()
    ds = sim.datastore_dir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ds)], check=True)
    try:
        yield sim
    finally:
        subprocess.run(["umount", "-l", str(ds)], check=False)


def test_create_that_fills_the_datastore_leaves_nothing_behind(
    cli: Cli, tiny_datastore_sim: SimulatorHost, start_worker: Any
) -> None:
    sim = tiny_datastore_sim
    si = sim.connect()
    make_template(si, sim.datastore_dir(), "golden", os.urandom(600 * 1024))
    assert (
        cli(
            "host", "add", "tiny", "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n"
        ).exit_code
        == 0
    )
    assert cli("template", "add", "golden", "--host", "tiny").exit_code == 0
    start_worker("tiny")
    before_dirs = sorted(os.listdir(sim.datastore_dir()))
    name = unique("full")
    result = cli("--json", "vm", "create", name, "--template", "golden", "--timeout", "120")
    assert result.exit_code == 1, result.stdout
    job = result.json()
    assert job["state"] == "failed"
    assert job["error"]["code"] == "datastore_error", job["error"]
    assert "copy disk" in job["error"]["message"]
    steps = {s["name"]: s for s in job["steps"]}
    assert steps["copy disk 1/1"]["state"] == "failed"
    assert steps["clean up after failure"]["state"] == "succeeded"
    assert name not in vm_names(si)
    assert sorted(os.listdir(sim.datastore_dir())) == before_dirs
