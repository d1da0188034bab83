"""`ceso vm create` end to end: a real worker, Redis, SQL and the simulator; effects read back independently."""

from __future__ import annotations

import os

import yaml

from ceso.cloudinit import decode_guestinfo
from tests.conftest import Cli, unique
from tests.support.vms import devices_of, extra_config, vim, vm_by_name, vm_names
from tests.vm.conftest import TemplateBed

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


def test_create_copies_disk_bytes_with_new_identity_and_static_ip(cli: Cli, bed: TemplateBed) -> None:
    name = unique("web")
    result = cli(
        "--json",
        "vm",
        "create",
        name,
        "--template",
        bed.template,
        "--cpus",
        "4",
        "--memory",
        "4G",
        "--ip",
        "192.0.2.10/24",
        "--gateway",
        "192.0.2.1",
        "--dns",
        "192.0.2.53,2001:db8::53",
        "--search",
        "example.com",
        "--ssh-key",
        KEY,
        "--timeout",
        "120",
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    job = result.json()
    assert job["state"] == "succeeded", job

    vm = vm_by_name(bed.si, name)
    template = vm_by_name(bed.si, bed.template)
    assert vm is not None
    # Disk: a copy on the host with the same bytes, in the new VM's own directory.
    (disk,) = devices_of(vm, "VirtualDisk")
    assert disk.backing.fileName == f"[LocalDS_0] {name}/{name}.vmdk"
    assert (bed.datastore_dir / name / f"{name}-flat.vmdk").read_bytes() == bed.payload
    assert (bed.datastore_dir / bed.template / f"{bed.template}-flat.vmdk").read_bytes() == bed.payload
    # Identity: new BIOS UUID and new MACs in VMware's static range.
    assert vm.config.uuid != template.config.uuid
    (nic,) = devices_of(vm, "VirtualEthernetCard")
    (tnic,) = devices_of(template, "VirtualEthernetCard")
    assert nic.macAddress != tnic.macAddress and nic.macAddress.startswith("00:50:56:")
    assert vm.config.hardware.numCPU == 4 and vm.config.hardware.memoryMB == 4096
    assert vm.runtime.powerState == "poweredOn"
    # cloud-init: metadata with a fresh instance-id, the host name and netplan v2 matched by MAC.
    docs = decode_guestinfo(extra_config(vm))
    meta = yaml.safe_load(docs["metadata"])
    assert meta["instance-id"] == job["result"]["instance_id"]
    assert meta["local-hostname"] == name
    eth = meta["network"]["ethernets"]["nic0"]
    assert meta["network"]["version"] == 2
    assert eth["match"]["macaddress"] == nic.macAddress
    assert eth["addresses"] == ["192.0.2.10/24"]
    assert eth["routes"] == [{"to": "0.0.0.0/0", "via": "192.0.2.1"}]
    assert eth["nameservers"] == {"addresses": ["192.0.2.53", "2001:db8::53"], "search": ["example.com"]}
    assert "gateway4" not in docs["metadata"]
    user = yaml.safe_load(docs["userdata"])
    assert user["users"][0]["ssh_authorized_keys"] == [KEY]
    assert docs["userdata"].startswith("#cloud-config")
    # The job recorded its steps and the exact vSphere calls.
    steps = {s["name"]: s for s in job["steps"]}
    assert {"lock", "make directory", "copy disk 1/1", "create VM", "power on"} <= set(steps)
    copy_calls = [c["method"] for c in steps["copy disk 1/1"]["calls"]]
    assert copy_calls == ["VirtualDiskManager.CopyVirtualDisk_Task"]
    assert job["result"]["uuid"] == vm.config.uuid


def test_ipv6_and_dhcp_variants(cli: Cli, bed: TemplateBed) -> None:
    v6 = unique("v6")
    assert (
        cli(
            "vm",
            "create",
            v6,
            "--template",
            bed.template,
            "--ip6",
            "2001:db8::10/64",
            "--gateway6",
            "2001:db8::1",
            "--no-power-on",
            "--timeout",
            "120",
        ).exit_code
        == 0
    )
    meta = yaml.safe_load(decode_guestinfo(extra_config(vm_by_name(bed.si, v6)))["metadata"])
    eth = meta["network"]["ethernets"]["nic0"]
    assert eth["addresses"] == ["2001:db8::10/64"] and eth["routes"] == [{"to": "::/0", "via": "2001:db8::1"}]
    assert vm_by_name(bed.si, v6).runtime.powerState == "poweredOff"

    dhcp = unique("dhcp")
    assert cli("vm", "create", dhcp, "--template", bed.template, "--timeout", "120").exit_code == 0
    meta = yaml.safe_load(decode_guestinfo(extra_config(vm_by_name(bed.si, dhcp)))["metadata"])
    assert meta["network"]["ethernets"]["nic0"]["dhcp4"] is True
    assert "addresses" not in meta["network"]["ethernets"]["nic0"]


def test_disk_grow(cli: Cli, bed: TemplateBed) -> None:
    name = unique("big")
    assert (
        cli(
            "vm",
            "create",
            name,
            "--template",
            bed.template,
            "--disk",
            "40G",
            "--no-power-on",
            "--timeout",
            "120",
        ).exit_code
        == 0
    )
    (disk,) = devices_of(vm_by_name(bed.si, name), "VirtualDisk")
    assert disk.capacityInKB == 40 * 1024 * 1024


def test_same_idempotency_key_makes_one_vm(cli: Cli, bed: TemplateBed) -> None:
    name = unique("idem")
    args = (
        "--json",
        "vm",
        "create",
        name,
        "--template",
        bed.template,
        "--idempotency-key",
        f"k-{name}",
        "--no-power-on",
        "--timeout",
        "120",
    )
    first = cli(*args)
    second = cli(*args)
    assert first.exit_code == second.exit_code == 0, second.stdout + second.stderr
    assert first.json()["id"] == second.json()["id"]
    assert vm_names(bed.si).count(name) == 1


def test_dry_run_changes_nothing_and_shows_cloudinit(cli: Cli, bed: TemplateBed) -> None:
    name = unique("dry")
    result = cli(
        "--json", "--dry-run", "vm", "create", name, "--template", bed.template, "--ip", "192.0.2.7/24"
    )
    assert result.exit_code == 0, result.stderr
    body = result.json()
    assert body["dry_run"] is True and body["kind"] == "vm.create"
    assert "192.0.2.7/24" in body["cloudinit"]["metadata"]
    assert any("CopyVirtualDisk_Task" in step for step in body["plan"])
    assert name not in vm_names(bed.si)
    assert cli("--json", "job", "list").json() == []


def test_bad_inputs_are_refused_before_anything_happens(cli: Cli, bed: TemplateBed) -> None:
    before = vm_names(bed.si)
    cases = [
        (["vm", "create", "a/b", "--template", bed.template], 2, "would break a datastore path"),
        (["vm", "create", "x" * 81, "--template", bed.template], 2, "at most 80"),
        (["vm", "create", "bad\nname", "--template", bed.template], 2, "control characters"),
        (["vm", "create", "ok1", "--template", bed.template, "--ip", "192.0.2.300/24"], 2, "--ip"),
        (
            [
                "vm",
                "create",
                "ok1",
                "--template",
                bed.template,
                "--ip",
                "192.0.2.10/24",
                "--gateway",
                "198.51.100.1",
            ],
            2,
            "gateway",
        ),
        (["vm", "create", "ok1", "--template", bed.template, "--ssh-key", "ssh-rsa notakey"], 2, "ssh"),
        (["vm", "create", "ok1", "--template", bed.template, "--memory", "lots"], 2, "memory"),
        (["vm", "create", "ok1", "--template", "nope"], 4, "no template"),
        (["vm", "create", bed.template, "--template", bed.template], 5, "already exists"),
    ]
    for args, code, fragment in cases:
        result = cli(*args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
    assert vm_names(bed.si) == before
    assert cli("--json", "job", "list").json() == []


def test_create_from_an_efi_template_copies_its_nvram(cli: Cli, bed: TemplateBed) -> None:
    """An EFI guest's boot entries live in its NVRAM: the new VM gets the template's (API route)."""
    template = vm_by_name(bed.si, bed.template)
    task = template.ReconfigVM_Task(spec=vim.vm.ConfigSpec(firmware="efi"))
    assert task.info.state == "success"
    nvram = b"NVRAM\0" + os.urandom(4096)
    (bed.datastore_dir / bed.template / f"{bed.template}.nvram").write_bytes(nvram)
    name = unique("efi")
    result = cli(
        "--json", "vm", "create", name, "--template", bed.template, "--no-power-on", "--timeout", "120"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (bed.datastore_dir / name / f"{name}.nvram").read_bytes() == nvram
    assert vm_by_name(bed.si, name).config.firmware == "efi"
    steps = {s["name"]: s for s in result.json()["steps"]}
    assert [c["method"] for c in steps["copy NVRAM"]["calls"]] == ["FileManager.CopyDatastoreFile_Task"]


def test_create_carries_the_templates_hardware(cli: Cli, bed: TemplateBed) -> None:
    """Cores per socket, reservations, CD-ROMs and serial ports (disconnected), USB, NIC slot, disk UUIDs."""
    from tests.vm.test_fake_backend_fidelity import EXPECTED, api_hardware_source, api_props, hardware

    api_hardware_source(vm_by_name(bed.si, bed.template), bed.template)
    name = unique("hw")
    result = cli(
        "--json", "vm", "create", name, "--template", bed.template, "--no-power-on", "--timeout", "120"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert hardware(api_props(vm_by_name(bed.si, name)), bed.template) == EXPECTED
