"""``ceso vm list`` across hosts: filters, and a host that does not answer costs only its own VMs."""

from __future__ import annotations

from typing import Any

from tests.conftest import Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template


def test_filters_by_name_power_and_template(cli: Cli, sim: SimulatorHost, registered_host: str) -> None:
    si = sim.connect()
    group = unique("flt")
    names = {f"{group}-web-1": True, f"{group}-web-2": False, f"{group}-db-1": False}
    for name, on in names.items():
        vm = make_template(si, sim.datastore_dir(), name, b"x")
        if on:
            vm.PowerOnVM_Task()
    assert cli("template", "add", f"{group}-db-1", "--host", registered_host).exit_code == 0
    try:

        def listed(*args: str) -> list[str]:
            result = cli("--json", "vm", "list", "--host", registered_host, "--name", f"{group}-*", *args)
            assert result.exit_code == 0, result.stderr
            return sorted(v["name"] for v in result.json())

        assert listed() == sorted(names)
        assert listed("--name", f"{group}-web-*") == [f"{group}-web-1", f"{group}-web-2"]
        assert listed("--power", "on") == [f"{group}-web-1"]
        assert listed("--power", "off", "--no-template") == [f"{group}-web-2"]
        assert listed("--template") == [f"{group}-db-1"]
    finally:
        assert cli("template", "remove", f"{group}-db-1").exit_code == 0
        for name in names:
            destroy_vm(si, name)


def test_an_unreachable_host_is_reported_and_the_others_listed(
    cli: Cli, sim: SimulatorHost, registered_host: str, sim_factory: Any
) -> None:
    si = sim.connect()
    mine = unique("up")
    make_template(si, sim.datastore_dir(), mine, b"x")
    gone = sim_factory()
    down = unique("down")
    added = cli("host", "add", down, "--url", gone.url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stderr
    gone.stop()
    try:
        human = cli("vm", "list")
        assert human.exit_code == 6, human.stdout + human.stderr
        assert mine in human.stdout
        assert f"error: host {down}: " in human.stderr
        assert f"1 of the hosts did not answer: {down}" not in human.stdout
        machine = cli("--json", "vm", "list")
        assert machine.exit_code == 6
        body = machine.json()
        assert mine in {v["name"] for v in body["vms"]} and registered_host in {
            v["host"] for v in body["vms"]
        }
        (error,) = body["errors"]
        assert error["host"] == down and error["code"] == "host_unreachable", error
        # Listing the answering host alone is unaffected.
        assert cli("vm", "list", "--host", registered_host).exit_code == 0
    finally:
        destroy_vm(si, mine)
        assert cli("host", "remove", down).exit_code == 0
