"""`vm create --wait-ip`: the job waits until the guest reports its address."""

from __future__ import annotations

import time

import pytest

from ceso.backends.api import ApiVmBackend
from ceso.backends.guest import wait_for_ip
from ceso.errors import TimeoutExpiredError
from ceso.esxi.client import EsxiClient
from ceso.hosts.endpoint import parse_endpoint
from tests.conftest import Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, destroy_vm, vim, vm_by_name
from tests.vm.conftest import TemplateBed


def test_create_waits_for_the_guest_address(cli: Cli, bed: TemplateBed) -> None:
    name = unique("ipwait")
    queued = cli(
        "--json",
        "vm",
        "create",
        name,
        "--template",
        bed.template,
        "--ip",
        "192.0.2.50/24",
        "--wait-ip",
        "--wait-ip-timeout",
        "60",
        "--no-wait",
    )
    assert queued.exit_code == 0, queued.stderr
    job_id = queued.json()["id"]
    deadline = time.monotonic() + 60
    while cli("--json", "job", "status", job_id).json()["current_step"] != "wait for guest IP":
        assert time.monotonic() < deadline, cli("--json", "job", "status", job_id).stdout
        time.sleep(0.2)
    assert cli("--json", "job", "status", job_id).json()["state"] == "running"
    # Simulator only: play the guest's VMware Tools reporting its address.
    vm = vm_by_name(bed.si, name)
    vm.ReconfigVM_Task(
        spec=vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value="192.0.2.50")]
        )
    )
    done = cli("--json", "job", "wait", job_id, "--timeout", "60")
    assert done.exit_code == 0, done.stdout
    assert "192.0.2.50" in done.json()["result"]["ip_addresses"]


def test_wait_ip_times_out_with_a_clear_error(cli: Cli, bed: TemplateBed) -> None:
    name = unique("noip")
    result = cli(
        "--json",
        "vm",
        "create",
        name,
        "--template",
        bed.template,
        "--wait-ip",
        "--wait-ip-timeout",
        "2",
        "--timeout",
        "60",
    )
    assert result.exit_code == 1
    assert result.json()["error"]["code"] == "timeout"
    assert "open-vm-tools" in result.json()["error"]["message"]
    assert "left running" in result.json()["error"]["message"]
    # The VM itself was complete: it is kept, not cleaned up.
    assert vm_by_name(bed.si, name).runtime.powerState == "poweredOn"


def test_wait_ip_skips_link_local_and_loopback_on_the_api_route(sim: SimulatorHost) -> None:
    """The API route's wait gives back the same addresses as the SSH route's (tests/ssh)."""
    client = EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    ).connect()
    si = sim.connect()
    names = [unique("ll"), unique("v4")]
    try:
        for name, address in zip(names, ("fe80::250:56ff:fe3f:9", "192.0.2.71"), strict=True):
            vm = create_vm(si, name)
            option = vim.option.OptionValue(key="SET.guest.ipAddress", value=address)
            assert vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[option])).info.state == "success"
        ops = ApiVmBackend(client)
        with pytest.raises(TimeoutExpiredError):  # only a link-local address: not yet reachable
            wait_for_ip(ops, ops.find(names[0]), expected=[], timeout=1)
        assert wait_for_ip(ops, ops.find(names[1]), expected=[], timeout=5) == ["192.0.2.71"]
    finally:
        for name in names:
            destroy_vm(si, name)
