"""`ceso template import` on the SSH route (a free-licensed host): the disk is converted on the
worker and written thin over SFTP, the .vmx written and registered with vim-cmd; the template
then serves `vm create`. OVAs built with qemu-img; results read from the datastore and pyVmomi."""

from __future__ import annotations

from pathlib import Path

import yaml

from ceso.cloudinit import decode_guestinfo
from tests.conftest import Cli, unique
from tests.ssh.conftest import SshBed
from tests.support.images import MIB, make_ova, make_raw
from tests.support.vms import devices_of, extra_config, vm_by_name, vm_names


def test_an_ova_imports_over_ssh_as_a_thin_template_and_a_failed_import_leaves_nothing(
    cli: Cli, ssh_bed: SshBed, tmp_path: Path
) -> None:
    bed = ssh_bed
    raw = make_raw(tmp_path / "r", 4 * MIB)
    ova = make_ova(tmp_path, "noble", [raw])
    name, web = unique("noble"), unique("web")
    result = cli(
        "--json", "template", "import", name, "--host", bed.host, "--from", str(ova), "--timeout", "120"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    job = result.json()
    assert job["state"] == "succeeded" and job["result"]["template"]["status"] == "passed", job
    assert all(s.get("route") == "ssh" for s in job["steps"])
    # The disk: a VMFS descriptor and a sparse flat file with the image's bytes, under the VM's name.
    flat = bed.datastore_dir / name / f"{name}-flat.vmdk"
    assert flat.read_bytes() == raw and flat.stat().st_blocks * 512 < len(raw) // 4
    descriptor = (bed.datastore_dir / name / f"{name}.vmdk").read_text()
    assert 'createType="vmfs"' in descriptor and f'VMFS "{name}-flat.vmdk"' in descriptor
    vmx = (bed.datastore_dir / name / f"{name}.vmx").read_text()
    assert 'guestOS = "ubuntu-64"' in vmx and 'scsi0.virtualDev = "pvscsi"' in vmx
    assert 'ethernet0.virtualDev = "vmxnet3"' in vmx
    ran = [i["argv"] for i in bed.shell.invocations()]
    assert ["solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx", name] in ran
    si = bed.sim.connect()
    vm = vm_by_name(si, name)
    (disk,) = devices_of(vm, "VirtualDisk")
    assert disk.capacityInKB * 1024 == len(raw) and vm.config.hardware.numCPU == 2

    created = cli(
        "--json", "vm", "create", web, "--template", name, "--ip", "192.0.2.30/24", "--timeout", "120"
    )
    assert created.exit_code == 0, created.stdout + created.stderr
    assert (bed.datastore_dir / web / f"{web}-flat.vmdk").read_bytes() == raw
    meta = yaml.safe_load(decode_guestinfo(extra_config(vm_by_name(si, web)))["metadata"])
    assert meta["network"]["ethernets"]["nic0"]["addresses"] == ["192.0.2.30/24"]

    # A disk that differs from the manifest (seen once it was written): nothing is left behind.
    bad = make_ova(tmp_path, "bad", [make_raw(tmp_path / "r", MIB)], corrupt="bad-disk0.vmdk")
    name = unique("bad")
    failed = cli(
        "--json", "template", "import", name, "--host", bed.host, "--from", str(bad), "--timeout", "120"
    )
    assert failed.exit_code == 2 and "manifest" in failed.stderr + failed.stdout, (
        failed.stdout + failed.stderr
    )
    assert name not in vm_names(si) and not (bed.datastore_dir / name).exists()
