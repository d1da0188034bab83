"""Fixtures for VM job tests: a template on the simulator with known disk bytes, and a worker."""

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


@dataclass
class TemplateBed:
    host: str
    template: str
    payload: bytes
    si: Any
    datastore_dir: Path
    worker: Worker


@pytest.fixture
def bed(cli: Cli, sim: SimulatorHost, registered_host: str, start_worker: Any) -> Iterator[TemplateBed]:
    si = sim.connect()
    name = unique("tmpl")
    payload = os.urandom(64 * 1024) + b"\0" * 65536 + b"ceso template bytes\n" * 100
    make_template(si, sim.datastore_dir(), name, payload)
    before = set(vm_names(si))
    added = cli("--json", "template", "add", name, "--host", registered_host)
    assert added.exit_code == 0, added.stdout + added.stderr
    assert added.json()["status"] == "passed", added.json()
    worker = start_worker(registered_host, concurrency=2)
    yield TemplateBed(registered_host, name, payload, si, sim.datastore_dir(), worker)
    for vm in set(vm_names(si)) - before:
        destroy_vm(si, vm)
    destroy_vm(si, name)
