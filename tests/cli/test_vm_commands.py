"""`ceso vm list/info` against VMs made directly in the simulator, checked with pyVmomi."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.support.imports import ceso_imports
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, destroy_vm, vim


@pytest.fixture
def vms(sim: SimulatorHost) -> Iterator[tuple[Any, list[str]]]:
    si = sim.connect()
    names = [unique("web"), unique("db")]
    create_vm(si, names[0], cpus=4, memory_mb=4096, disk_gb=40)
    create_vm(si, names[1])
    yield si, names
    for name in names:
        destroy_vm(si, name)


def test_vm_list_matches_the_hosts_inventory(
    cli: Cli, registered_host: str, vms: tuple[Any, list[str]]
) -> None:
    si, names = vms
    result = cli("--json", "vm", "list", "--host", registered_host)
    assert result.exit_code == 0, result.stderr
    listed = {v["name"]: v for v in result.json()}
    assert set(names) <= set(listed)
    for name in names:
        truth = next(
            vm
            for vm in si.RetrieveContent()
            .viewManager.CreateContainerView(si.RetrieveContent().rootFolder, [vim.VirtualMachine], True)
            .view
            if vm.name == name
        )
        row = listed[name]
        assert row["host"] == registered_host
        assert row["uuid"] == truth.config.uuid
        assert row["cpus"] == truth.config.hardware.numCPU
        assert row["memory_mb"] == truth.config.hardware.memoryMB
        assert row["power_state"] == truth.runtime.powerState
        assert row["guest_id"] == "ubuntu64Guest"
        disks = [d for d in truth.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert [d["path"] for d in row["disks"]] == [d.backing.fileName for d in disks]
        assert [d["capacity_bytes"] for d in row["disks"]] == [d.capacityInKB * 1024 for d in disks]
        nics = [d for d in truth.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert row["nics"] == [{"mac": n.macAddress, "network": "VM Network"} for n in nics]
        assert row["snapshots"] == 0
        assert set(row) == {
            "name",
            "host",
            "uuid",
            "power_state",
            "cpus",
            "memory_mb",
            "guest_id",
            "template",
            "vmx_path",
            "disks",
            "nics",
            "ip_addresses",
            "snapshots",
        }
    assert listed[names[0]]["cpus"] == 4 and listed[names[0]]["disks"][0]["capacity_bytes"] == 40 * 2**30


def test_vm_list_process_reads_sql_without_the_sql_toolkit(
    ceso_env: dict[str, str], registered_host: str, vms: tuple[Any, list[str]]
) -> None:
    # The quick reads use the database driver and the XML listing: no SQLAlchemy, no tenacity.
    proc, imported = ceso_imports(["--json", "vm", "list", "--host", registered_host], ceso_env)
    assert proc.returncode == 0, proc.stderr
    assert set(vms[1]) <= {v["name"] for v in json.loads(proc.stdout)}
    assert imported == {"pyVmomi"}
    unknown, _ = ceso_imports(["--json", "vm", "list", "--host", "nope"], ceso_env)
    assert unknown.returncode == 4
    assert json.loads(unknown.stdout)["error"]["message"].startswith("unknown host 'nope' (registered: ")


def test_vm_info_with_and_without_host(cli: Cli, registered_host: str, vms: tuple[Any, list[str]]) -> None:
    _, names = vms
    with_host = cli("--json", "vm", "info", names[0], "--host", registered_host)
    assert with_host.exit_code == 0, with_host.stderr
    assert with_host.json()["name"] == names[0]
    without = cli("--json", "vm", "info", names[0])
    assert without.json() == with_host.json()
    human = cli("vm", "info", names[0])
    assert names[0] in human.stdout and "cpus: 4" in human.stdout


def test_vm_info_unknown_vm_and_host(cli: Cli, registered_host: str) -> None:
    missing = cli("--json", "vm", "info", "no-such-vm", "--host", registered_host)
    assert missing.exit_code == 4
    assert "no VM named 'no-such-vm'" in missing.json()["error"]["message"]
    nohost = cli("vm", "list", "--host", "ghost")
    assert nohost.exit_code == 4
    assert "unknown host 'ghost'" in nohost.stderr


def test_same_vm_name_on_two_hosts_needs_host(
    cli: Cli, sim: SimulatorHost, sim_factory: Any, registered_host: str
) -> None:
    other = sim_factory()
    name = unique("twin")
    create_vm(sim.connect(), name)
    create_vm(other.connect(), name)
    try:
        assert (
            cli(
                "host", "add", "other", "--url", other.url, "--user", "root", "--password-stdin", input="pw\n"
            ).exit_code
            == 0
        )
        ambiguous = cli("vm", "info", name)
        assert ambiguous.exit_code == 5
        assert "pass --host" in ambiguous.stderr
        assert cli("--json", "vm", "info", name, "--host", "other").json()["host"] == "other"
        both = [v for v in cli("--json", "vm", "list").json() if v["name"] == name]
        assert sorted(v["host"] for v in both) == sorted([registered_host, "other"])
    finally:
        destroy_vm(sim.connect(), name)
