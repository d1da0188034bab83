"""A test bed for backup jobs: a registered simulator host, a worker, a VM with known disk bytes, a target."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, Worker, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template, vm_names


def payload(size: int = 3 << 20) -> bytes:
    """One third random, one third zeros, one third text."""
    third = size // 3
    text = b"".join(b"ceso backup test line %07d\n" % i for i in range(third // 20 + 1))[:third]
    return os.urandom(third) + b"\0" * third + text


@dataclass
class BackupBed:
    cli: Cli
    host: str
    si: Any
    datastore_dir: Path
    worker: Worker
    store: Path
    target: str

    def make_vm(self, data: bytes, *, power_on: bool = False) -> str:
        name = unique("src")
        vm = make_template(self.si, self.datastore_dir, name, data)
        if power_on:
            vm.PowerOnVM_Task()
        return name

    def flat(self, vm: str) -> Path:
        return self.datastore_dir / vm / f"{vm}-flat.vmdk"

    def run(self, *args: str) -> Any:
        result = self.cli("--json", *args)
        assert result.exit_code == 0, result.stdout + result.stderr
        return result.json()


@pytest.fixture
def backup_bed(
    cli: Cli, sim: SimulatorHost, registered_host: str, start_worker: Any, tmp_path: Path
) -> Iterator[BackupBed]:
    si = sim.connect()
    before = set(vm_names(si))
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    added = cli("--json", "target", "add", target, "--type", "local", "--path", str(store))
    assert added.exit_code == 0, added.stdout + added.stderr
    worker = start_worker(registered_host, concurrency=2)
    yield BackupBed(cli, registered_host, si, sim.datastore_dir(), worker, store, target)
    for vm in set(vm_names(si)) - before:
        destroy_vm(si, vm)
