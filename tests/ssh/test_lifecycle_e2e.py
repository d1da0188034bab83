"""Power, snapshot and delete jobs on the SSH route (a free-licensed host), read back independently.

The same jobs as tests/vm/lifecycle on the API route; here every step must
say ``route: ssh`` and make its change with the ESXi shell, not the API.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Cli, unique
from tests.ssh.conftest import SshBed
from tests.support.vms import snapshot_names, vm_by_name

SHELL_CALLS = {"ssh", "sftp.read", "sftp.write", "sftp.mkdir", "sftp.remove_tree", "sftp.stat"}


def _ok(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("--json", *args, "--timeout", "120")
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    job: dict[str, Any] = result.json()
    assert job["state"] == "succeeded", job
    assert all(s.get("route") == "ssh" for s in job["steps"] if s["name"] != "lock"), job["steps"]
    assert {c["method"] for s in job["steps"] for c in s.get("calls", [])} <= SHELL_CALLS
    return job


def _commands(job: dict[str, Any]) -> list[str]:
    return [c["args"]["command"] for s in job["steps"] for c in s.get("calls", []) if c["method"] == "ssh"]


def test_power_snapshot_and_delete_over_ssh(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    name = unique("life")
    _ok(cli, "vm", "create", name, "--template", bed.template, "--no-power-on")
    si = bed.sim.connect()

    job = _ok(cli, "vm", "power", "on", name)
    assert vm_by_name(si, name).runtime.powerState == "poweredOn"
    vmid = job["steps"][-1]["calls"][0]["args"]["command"].rsplit(" ", 1)[1]
    assert f"vim-cmd vmsvc/power.on {vmid}" in _commands(job)
    again = _ok(cli, "vm", "power", "on", name)
    assert again["result"]["changed"] is False
    job = _ok(cli, "vm", "power", "reset", name)
    assert f"vim-cmd vmsvc/power.reset {vmid}" in _commands(job)

    job = _ok(cli, "vm", "snapshot", "create", name, "before 'upgrade'", "--description", "pre; $(24.04)")
    assert snapshot_names(si, vm_by_name(si, name)) == ["before 'upgrade'"]
    assert any(c.startswith("vim-cmd vmsvc/snapshot.create") for c in _commands(job))
    assert job["result"]["snapshot"] == "before 'upgrade'" and job["result"]["description"] == "pre; $(24.04)"
    _ok(cli, "vm", "snapshot", "create", name, "second")
    assert snapshot_names(si, vm_by_name(si, name)) == ["before 'upgrade'", "second"]
    job = _ok(cli, "vm", "snapshot", "revert", name, "before 'upgrade'")
    assert any(c.startswith("vim-cmd vmsvc/snapshot.revert") for c in _commands(job))
    job = _ok(cli, "vm", "snapshot", "delete", name, "second")
    assert job["result"]["removed"] == ["second"]
    assert snapshot_names(si, vm_by_name(si, name)) == ["before 'upgrade'"]

    job = _ok(cli, "vm", "power", "off", name)
    assert vm_by_name(si, name).runtime.powerState == "poweredOff"

    job = _ok(cli, "vm", "delete", name, "--yes")
    assert vm_by_name(si, name) is None
    assert not (bed.datastore_dir / name).exists()
    assert f"vim-cmd vmsvc/destroy {vmid}" in _commands(job)
    assert job["result"]["folder_removed"] is True


def test_reconfigure_over_ssh_grows_a_disk_and_refuses_the_rest(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    name = unique("grow")
    _ok(cli, "vm", "create", name, "--template", bed.template, "--no-power-on")
    si = bed.sim.connect()
    (disk,) = [
        d for d in vm_by_name(si, name).config.hardware.device if type(d).__name__.endswith("VirtualDisk")
    ]

    job = _ok(cli, "vm", "reconfigure", name, "--disk-grow", "1", f"{disk.capacityInKB // 2**20 + 4}G")
    assert any(c.startswith("vmkfstools -X") for c in _commands(job)), _commands(job)
    (grown,) = [
        d for d in vm_by_name(si, name).config.hardware.device if type(d).__name__.endswith("VirtualDisk")
    ]
    assert grown.capacityInKB == disk.capacityInKB + 4 * 2**20

    refused = cli("--json", "vm", "reconfigure", name, "--cpus", "4", "--timeout", "120")
    assert refused.exit_code == 1, refused.stdout
    assert refused.json()["error"]["code"] == "not_supported_over_ssh"
    assert vm_by_name(si, name).config.hardware.numCPU == 2
    _ok(cli, "vm", "delete", name, "--yes")

    # A blank VM is not made over SSH: refused before a job is queued, nothing on the host.
    blank = unique("blank")
    args = ["--json", "vm", "create", blank, "--blank", "--host", bed.host, "--cpus", "1"]
    refused = cli(*args, "--memory", "1G", "--disk", "1G", "--timeout", "60")
    assert refused.exit_code == 1, refused.stdout + refused.stderr
    assert refused.json()["error"]["code"] == "not_supported_over_ssh"
    assert vm_by_name(si, blank) is None and not (bed.sim.datastore_dir() / blank).exists()
