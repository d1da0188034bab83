"""What real ESXi hosts do that a well-behaved emulator would not, through a real sshd and the emulators.

Each test stands for one behaviour of real hosts (docs/ssh-route.md, "What real hosts do"): the
emulators are made to behave that way and SshVmBackend must cope. Effects are read back
through the simulator's API and the datastore directory, not through ceso.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ceso.ssh.backend import SshVmBackend
from ceso.ssh.client import SshClient
from tests.ssh.conftest import TEMPLATE_VMX, local_si, make_ssh_template
from tests.support.simulator import SimulatorHost
from tests.support.sshd import SshServer
from tests.support.vms import destroy_vm, vm_by_name


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, args: dict[str, Any]) -> None:
        self.calls.append((method, args))


@pytest.fixture
def backend(ssh_client: SshClient) -> SshVmBackend:
    return SshVmBackend(ssh_client, Recorder(), task_timeout=60)


@pytest.fixture
def made(free_sim: SimulatorHost) -> Iterator[list[str]]:
    """Names of VMs a test made; destroyed afterwards."""
    names: list[str] = []
    yield names
    si = local_si(free_sim)
    for name in names:
        if vm_by_name(si, name) is not None:
            destroy_vm(si, name)


def template(
    shell: SshServer, sim: SimulatorHost, made: list[str], name: str, vmx: str = TEMPLATE_VMX
) -> str:
    make_ssh_template(shell, sim, name, os.urandom(4096), mac="00:50:56:3f:00:09", vmx=vmx)
    made.append(name)
    return name


def test_inventory_past_invalid_registrations_and_names_with_brackets(
    backend: SshVmBackend, shell: SshServer, free_sim: SimulatorHost, made: list[str]
) -> None:
    name = template(shell, free_sim, made, _unique("web01 [old]  (2): x"))
    shell.configure(invalid_vms=[96, 97])  # one line before the header, one after the rows
    vm = backend.find(name)
    assert vm.name == name and vm.vmx_path == f"[LocalDS_0] {name}/{name}.vmx"
    assert backend.props(vm, ["config.guestId"])["config.guestId"] == "ubuntu64Guest"
    out = [i for i in shell.invocations() if i["argv"] == ["vmsvc/getallvms"]]
    assert out  # the inventory came from the emulator, which printed both "Skipping" lines
