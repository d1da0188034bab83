"""`ceso vm create --blank`: an empty VM to install from an ISO, on the simulator through a real
worker; its hardware read back with pyVmomi and its files from the datastore directory."""

from __future__ import annotations

from tests.conftest import Cli, unique
from tests.support.vms import devices_of, vm_by_name, vm_names
from tests.vm.conftest import TemplateBed


def test_blank_vm_with_an_iso_and_its_refusals(cli: Cli, bed: TemplateBed) -> None:
    iso_dir = bed.datastore_dir / "iso"
    iso_dir.mkdir(exist_ok=True)
    (iso_dir / "installer.iso").write_bytes(b"\0" * 32768 + b"\x01CD001\x01")
    name = unique("blank")
    base = ["vm", "create", name, "--blank", "--host", bed.host, "--cpus", "2", "--memory", "2G"]
    iso = "[LocalDS_0] iso/installer.iso"
    result = cli(
        "--json", *base, "--disk", "1G", "--iso", iso, "--network", "VM Network",
        "--guest-id", "otherLinux64Guest", "--timeout", "120",
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    job = result.json()
    assert job["state"] == "succeeded", job

    vm = vm_by_name(bed.si, name)
    assert vm is not None
    hw = vm.config.hardware
    assert (hw.numCPU, hw.memoryMB) == (2, 2048)
    assert vm.config.firmware == "efi" and vm.config.guestId == "otherLinux64Guest"
    (scsi,) = devices_of(vm, "ParaVirtualSCSIController")
    (disk,) = devices_of(vm, "VirtualDisk")
    assert disk.controllerKey == scsi.key and disk.capacityInKB == 2**20
    assert disk.backing.thinProvisioned is True
    assert disk.backing.fileName == f"[LocalDS_0] {name}/{name}.vmdk"
    (nic,) = devices_of(vm, "VirtualEthernetCard")
    assert isinstance(nic, vim_type("VirtualVmxnet3")) and nic.macAddress.startswith("00:50:56:")
    assert nic.backing.deviceName == "VM Network"
    (cdrom,) = devices_of(vm, "VirtualCdrom")
    assert cdrom.backing.fileName == iso and cdrom.connectable.startConnected is True
    assert vm.runtime.powerState == "poweredOn"
    # On the datastore: the VM's .vmx and its new disk in its own folder.
    files = {p.name for p in (bed.datastore_dir / name).iterdir()}
    assert {f"{name}.vmx", f"{name}.vmdk"} <= files, files
    (iso_dir / "installer.iso").unlink()
    _refusals_make_nothing(cli, bed)


def _refusals_make_nothing(cli: Cli, bed: TemplateBed) -> None:
    """In the same bed (one worker and template for both): each refusal leaves nothing behind."""
    name = unique("blank")
    before = set(vm_names(bed.si))
    base = ["vm", "create", name, "--blank", "--host", bed.host, "--cpus", "1", "--memory", "1G"]
    missing = cli("--json", *base, "--disk", "1G", "--iso", "[LocalDS_0] iso/none.iso", "--timeout", "60")
    assert missing.exit_code == 4, missing.stdout + missing.stderr
    assert "no ISO [LocalDS_0] iso/none.iso" in missing.json()["error"]["message"]
    for extra, fragment in [
        (["--disk", "1G", "--template", bed.template], "give --template NAME or --blank"),
        ([], "--blank needs --disk"),
        (["--disk", "1G", "--ip", "192.0.2.9/24"], "--ip needs a template"),
    ]:
        refused = cli(*base, *extra)
        assert refused.exit_code == 2 and fragment in refused.stderr, (extra, refused.stderr)
    no_template = cli("vm", "create", name, "--iso", "[LocalDS_0] iso/a.iso")
    assert no_template.exit_code == 2 and "give --template NAME or --blank" in no_template.stderr
    plan = cli("--dry-run", *base, "--disk", "1G")
    assert plan.exit_code == 0 and "Folder.CreateVM_Task: EFI, a new thin disk" in plan.stdout, plan.stdout
    assert set(vm_names(bed.si)) == before and not (bed.datastore_dir / name).exists()


def vim_type(name: str) -> type:
    from tests.support.vms import vim

    return getattr(vim.vm.device, name)  # type: ignore[no-any-return]
