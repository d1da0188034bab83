"""Fixtures for the VM lifecycle tests: plain VMs on the session simulator, a registered host, a worker.

Effects are checked with pyVmomi and on the datastore's directory, never by asking ceso.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, CliResult, Worker, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, vim, vm_by_name, vmodl


@dataclass
class Lab:
    """A registered simulated host with a worker, and helpers to make VMs and check refusals."""

    host: str
    si: Any
    datastore_dir: Path
    worker: Worker
    cli: Cli
    made: list[str] = field(default_factory=list)

    def vm(self, prefix: str = "vm", *, power_on: bool = False, **kw: Any) -> str:
        """Create a plain VM (2 CPUs, 2 GiB, one 16 GiB disk, one NIC) directly in the simulator."""
        name = unique(prefix)
        vm = create_vm(self.si, name, **kw)
        self.made.append(name)
        if power_on:
            wait(vm.PowerOnVM_Task())
        return name

    def get(self, name: str) -> Any:
        vm = vm_by_name(self.si, name)
        assert vm is not None, f"VM {name} is gone"
        return vm

    def snapshot_info(self, name: str) -> Any:
        """The VM's ``snapshot`` property, None without snapshots.

        Read through the property collector: attribute access to an unset
        ``vm.snapshot`` breaks the simulator's answer.
        """
        pc = vmodl.query.PropertyCollector
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=self.get(name))],
            propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["snapshot"])],
        )
        found = self.si.RetrieveContent().propertyCollector.RetrieveContents([spec])
        props = found[0].propSet if found else []
        return props[0].val if props else None

    def job_count(self) -> int:
        result = self.cli("--json", "job", "list")
        assert result.exit_code == 0, result.stderr
        return len(result.json())

    def ok(self, *args: str) -> dict[str, Any]:
        """Run a job command with --json and --wait; assert it succeeded; return the job."""
        result = self.cli("--json", *args, "--timeout", "90")
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        job: dict[str, Any] = result.json()
        assert job["state"] == "succeeded", job
        return job

    def refused(self, args: list[str], code: int, fragment: str) -> CliResult:
        """Assert ``args`` exit with ``code`` and one clear line on stderr holding ``fragment``."""
        result = self.cli(*args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (args, result.stderr)
        return result


def wait(task: Any) -> None:
    """Wait for a task made directly with pyVmomi (the simulator finishes them at once)."""
    for _ in range(100):
        if task.info.state in ("success", "error"):
            break
        time.sleep(0.05)
    assert task.info.state == "success", task.info.error


def add_portgroup(si: Any, name: str) -> None:
    """A standard port group on vSwitch0 of the simulated host."""
    content = si.RetrieveContent()
    host = content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    host.configManager.networkSystem.AddPortGroup(
        portgrp=vim.host.PortGroup.Specification(
            name=name, vlanId=0, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
        )
    )


def steps_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in job["steps"]}


def calls_of(job: dict[str, Any]) -> list[str]:
    return [c["method"] for s in job["steps"] for c in s.get("calls", [])]


@pytest.fixture
def lab(cli: Cli, sim: SimulatorHost, registered_host: str, start_worker: Any) -> Iterator[Lab]:
    worker = start_worker(registered_host, concurrency=2)
    lab = Lab(registered_host, sim.connect(), sim.datastore_dir(), worker, cli)
    yield lab
    for name in lab.made:
        vm = vm_by_name(lab.si, name)
        if vm is None:
            continue
        if vm.runtime.powerState != "poweredOff":
            wait(vm.PowerOffVM_Task())
        wait(vm.Destroy_Task())
