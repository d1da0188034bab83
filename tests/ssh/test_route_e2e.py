"""End to end on the SSH route: `ceso host add/check`, then create and clone jobs on a free-licensed host.

Real worker, Redis, SQL (SQLite and PostgreSQL), sshd and simulator. The
assertions are those of the API route's tests (tests/vm/test_create.py):
disk bytes, new identity, guestinfo — read back independently — plus what
only this route has: the uploaded .vmx, the exact shell commands and the
route recorded on every step.
"""

from __future__ import annotations

import os
import pwd
import shlex
from pathlib import Path
from typing import Any

import yaml

from ceso.cloudinit import decode_guestinfo
from tests.conftest import Cli, unique
from tests.ssh.conftest import SshBed, add_ssh_host
from tests.support.simulator import SimulatorHost
from tests.support.sshd import SshServer
from tests.support.vms import devices_of, extra_config, vm_by_name, vm_names

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


def test_host_add_pins_the_ssh_host_key_and_probes_the_host(
    cli: Cli, free_sim: SimulatorHost, shell: SshServer, tmp_path: Any, sim: SimulatorHost
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(shell.client_key)
    fp = shell.host_key_fingerprint()
    unconfirmed = add_ssh_host(cli, free_sim, shell, key_file)
    assert unconfirmed.exit_code == 2, unconfirmed.stdout
    error = unconfirmed.json()["error"]
    assert error["code"] == "ssh_host_key_unconfirmed" and error["details"]["ssh_host_key"] == fp
    wrong = add_ssh_host(cli, free_sim, shell, key_file, "--ssh-host-key", "SHA256:" + "B" * 43)
    assert wrong.exit_code == 6 and wrong.json()["error"]["code"] == "ssh_host_key_mismatch"
    assert cli("--json", "host", "list").json() == []  # nothing was stored

    added = add_ssh_host(cli, free_sim, shell, key_file, "--accept-ssh-host-key")
    assert added.exit_code == 0, added.stdout + added.stderr
    host = added.json()
    assert host["ssh_host_key"] == fp and host["ssh_auth"] == "key" and host["route"] == "auto"
    caps = host["capabilities"]
    assert caps["license"]["free"] is True
    assert caps["license"]["licenses"][0]["edition_key"] == "esx.hypervisor.cpuPackageCoreLimited"
    assert caps["api_writes"] is False and caps["api_write_probe"] == "RestrictedVersion"
    assert caps["ssh"] == {
        "configured": True,
        "reachable": True,
        "authenticated": True,
        "commands": {"vim-cmd": True, "vmkfstools": True, "esxcli": True},
    }
    assert caps["datastores"] == ["LocalDS_0"] and caps["hardware_versions"] == ["vmx-13"]
    assert str(key_file) not in added.stdout and shell.client_key.splitlines()[1] not in added.stdout

    checked = cli("--json", "host", "check", host["name"])
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert checked.json()["capabilities"]["api_writes"] is False
    human = cli("host", "check", host["name"])
    assert (
        "API writes: refused (license)" in human.stdout
        and "tools: vim-cmd, vmkfstools, esxcli" in human.stdout
    )

    licensed = cli("--json", "host", "add", unique("paid"), "--url", sim.url, "--user", "root", "--password-stdin",
                   input="pw\n")  # fmt: skip
    assert licensed.exit_code == 0, licensed.stdout + licensed.stderr
    paid = licensed.json()["capabilities"]
    assert (
        paid["api_writes"] is True
        and paid["api_write_probe"] == "accepted"
        and paid["ssh"] == {"configured": False}
    )


def _create(cli: Cli, bed: SshBed, name: str, *extra: str) -> dict[str, Any]:
    result = cli("--json", "vm", "create", name, "--template", bed.template, "--timeout", "180", *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    job: dict[str, Any] = result.json()
    assert job["state"] == "succeeded", job
    return job


def test_create_over_ssh_matches_the_api_route(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    name = unique("web")
    dry = cli("--json", "--dry-run", "vm", "create", name, "--template", bed.template)
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert any("vmkfstools -i" in line for line in dry.json()["plan"]) and name not in vm_names(
        bed.sim.connect()
    )
    job = _create(
        cli, bed, name, "--cpus", "4", "--memory", "4G", "--ip", "192.0.2.10/24", "--gateway", "192.0.2.1",
        "--dns", "192.0.2.53", "--ssh-key", KEY,
    )  # fmt: skip
    si = bed.sim.connect()  # a read-only API session: the free host refuses writes, not reads
    vm = vm_by_name(si, name)
    template = vm_by_name(si, bed.template)
    assert vm is not None
    (disk,) = devices_of(vm, "VirtualDisk")
    assert disk.backing.fileName == f"[LocalDS_0] {name}/{name}.vmdk"
    assert (bed.datastore_dir / name / f"{name}-flat.vmdk").read_bytes() == bed.payload
    assert vm.config.uuid != template.config.uuid and job["result"]["uuid"] == vm.config.uuid
    (nic,) = devices_of(vm, "VirtualEthernetCard")
    (tnic,) = devices_of(template, "VirtualEthernetCard")
    assert nic.macAddress != tnic.macAddress and nic.macAddress.startswith("00:50:56:")
    assert vm.config.hardware.numCPU == 4 and vm.config.hardware.memoryMB == 4096
    assert vm.runtime.powerState == "poweredOn"
    docs = decode_guestinfo(extra_config(vm))
    meta = yaml.safe_load(docs["metadata"])
    assert meta["instance-id"] == job["result"]["instance_id"] and meta["local-hostname"] == name
    eth = meta["network"]["ethernets"]["nic0"]
    assert eth["match"]["macaddress"] == nic.macAddress and eth["addresses"] == ["192.0.2.10/24"]
    assert yaml.safe_load(docs["userdata"])["users"][0]["ssh_authorized_keys"] == [KEY]

    # The uploaded .vmx: new BIOS UUID and static MAC, the guestinfo keys.
    vmx = (bed.datastore_dir / name / f"{name}.vmx").read_text()
    bios = vm.config.uuid.replace("-", "")
    assert f'uuid.bios = "{" ".join(bios[i : i + 2] for i in range(0, 16, 2))}-' in vmx
    assert f'ethernet0.address = "{nic.macAddress}"' in vmx and 'ethernet0.addressType = "static"' in vmx
    assert 'guestinfo.metadata.encoding = "gzip+base64"' in vmx and "uuid.location" not in vmx

    # Every step ran on the SSH route and recorded the exact commands; no vSphere write was made.
    steps = {s["name"]: s for s in job["steps"]}
    assert {"inspect source", "make directory", "copy disk 1/1", "create VM", "power on"} <= set(steps)
    assert all(s.get("route") == "ssh" for s in job["steps"])
    calls = [c for s in job["steps"] for c in s.get("calls", [])]
    assert {c["method"] for c in calls} <= {
        "ssh",
        "sftp.read",
        "sftp.stat",
        "sftp.write",
        "sftp.mkdir",
        "sftp.remove_tree",
    }
    (copy,) = [c for c in steps["copy disk 1/1"]["calls"] if c["method"] == "ssh"]
    assert shlex.split(copy["args"]["command"]) == [
        "vmkfstools", "-i", f"/vmfs/volumes/LocalDS_0/{bed.template}/{bed.template}.vmdk",
        f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmdk", "-d", "thin",
    ]  # fmt: skip
    ran = [i["argv"] for i in bed.shell.invocations()]
    assert ["solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx", name] in ran


def test_clone_and_grow_over_ssh(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    source = unique("src")
    _create(cli, bed, source, "--no-power-on", "--ip", "192.0.2.20/24")
    si = bed.sim.connect()
    src_before = vm_by_name(si, source)
    src_macs = [n.macAddress for n in devices_of(src_before, "VirtualEthernetCard")]
    src_meta = yaml.safe_load(decode_guestinfo(extra_config(src_before))["metadata"])
    clone = unique("clone")
    result = cli(
        "--json", "vm", "clone", source, clone, "--ip", "192.0.2.21/24", "--disk", "40G", "--timeout", "180"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    new = vm_by_name(si, clone)
    assert new.config.uuid != src_before.config.uuid
    new_macs = [n.macAddress for n in devices_of(new, "VirtualEthernetCard")]
    assert not set(new_macs) & set(src_macs)
    assert (bed.datastore_dir / clone / f"{clone}-flat.vmdk").read_bytes() == bed.payload
    (disk,) = devices_of(new, "VirtualDisk")
    assert disk.capacityInKB == 40 * 2**20  # grown with vmkfstools -X
    meta = yaml.safe_load(decode_guestinfo(extra_config(new))["metadata"])
    assert meta["instance-id"] != src_meta["instance-id"] and meta["local-hostname"] == clone
    assert meta["network"]["ethernets"]["nic0"]["match"]["macaddress"] == new_macs[0]
    steps = {s["name"]: s for s in result.json()["steps"]}
    grow = [shlex.split(c["args"]["command"]) for c in steps["grow disk"]["calls"] if c["method"] == "ssh"]
    assert grow == [["vmkfstools", "-X", "40G", f"/vmfs/volumes/LocalDS_0/{clone}/{clone}.vmdk"]]
    src_after = vm_by_name(si, source)
    assert [n.macAddress for n in devices_of(src_after, "VirtualEthernetCard")] == src_macs
    assert src_after.config.uuid == src_before.config.uuid


def test_hostile_vm_names_over_ssh(cli: Cli, ssh_bed: SshBed) -> None:
    marker = unique("pwned")
    name = f"it's $(touch {marker}); a `touch {marker}-2` && x"
    job = _create(cli, ssh_bed, name, "--no-power-on", "--hostname", "hostile")
    assert vm_by_name(ssh_bed.sim.connect(), name) is not None
    assert (ssh_bed.datastore_dir / name / f"{name}-flat.vmdk").read_bytes() == ssh_bed.payload
    ran = [i["argv"] for i in ssh_bed.shell.invocations()]
    assert ["solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx", name] in ran
    for home in (Path(pwd.getpwuid(os.getuid()).pw_dir), ssh_bed.shell.workdir / "home", Path.cwd()):
        assert not list(home.glob(f"{marker}*")), home  # nothing the name spelled was run
    assert job["result"]["name"] == name
    refused = cli("vm", "create", "bad\nname", "--template", ssh_bed.template)
    assert refused.exit_code == 2 and "control characters" in refused.stderr
