"""`ceso vm reconfigure` end to end: one ReconfigVM_Task, its effects read back with pyVmomi."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import unique
from tests.support.vms import devices_of, vim
from tests.vm.lifecycle.conftest import Lab, add_portgroup, calls_of, steps_of, wait

GIB_KB = 1024 * 1024


def _iso(lab: Lab) -> str:
    """An ISO file on the datastore; returns its datastore path."""
    name = f"{unique('img')}.iso"
    folder: Path = lab.datastore_dir / "iso"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"CD001" * 100)
    return f"[LocalDS_0] iso/{name}"


def _hardware(vm: Any) -> tuple[Any, ...]:
    (disk,) = devices_of(vm, "VirtualDisk")
    nics = tuple(n.backing.deviceName for n in devices_of(vm, "VirtualEthernetCard"))
    cds = tuple(getattr(c.backing, "fileName", None) for c in devices_of(vm, "VirtualCdrom"))
    return vm.config.hardware.numCPU, vm.config.hardware.memoryMB, disk.capacityInKB, nics, cds


def test_every_change_in_one_task(lab: Lab) -> None:
    name = lab.vm("rcf")
    portgroup = unique("pg")
    add_portgroup(lab.si, portgroup)
    iso = _iso(lab)

    job = lab.ok(
        "vm", "reconfigure", name, "--cpus", "4", "--memory", "4G", "--disk-grow", "1", "32G",
        "--network", portgroup, "--iso", iso,
    )  # fmt: skip

    assert calls_of(job) == ["HostDatastoreBrowser.SearchDatastore_Task", "VirtualMachine.ReconfigVM_Task"]
    assert [c["method"] for c in steps_of(job)["reconfigure"]["calls"]] == ["VirtualMachine.ReconfigVM_Task"]
    vm = lab.get(name)
    assert vm.config.hardware.numCPU == 4 and vm.config.hardware.memoryMB == 4096
    (disk,) = devices_of(vm, "VirtualDisk")
    assert disk.capacityInKB == 32 * GIB_KB
    (nic,) = devices_of(vm, "VirtualEthernetCard")
    assert nic.backing.deviceName == portgroup
    (cd,) = devices_of(vm, "VirtualCdrom")
    assert isinstance(cd.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo) and cd.backing.fileName == iso
    assert cd.connectable.connected and cd.connectable.startConnected
    ide = {c.key for c in devices_of(vm, "VirtualIDEController")}
    assert cd.controllerKey in ide
    result = job["result"]
    assert result["changed"] is True and result["cpus"] == 4 and result["memory_mb"] == 4096
    assert result["nics"][0]["network"] == portgroup

    # A second ISO goes into the same CD-ROM; eject keeps the drive and drops the media.
    other = _iso(lab)
    lab.ok("vm", "reconfigure", name, "--iso", other)
    (cd,) = devices_of(lab.get(name), "VirtualCdrom")
    assert cd.backing.fileName == other
    lab.ok("vm", "reconfigure", name, "--eject-iso")
    (cd,) = devices_of(lab.get(name), "VirtualCdrom")
    assert not isinstance(cd.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo)
    assert not cd.connectable.connected and not cd.connectable.startConnected

    # The disk by its label (the simulator's own, then "Hard disk 1"); asking for the current state is a no-op.
    label = devices_of(lab.get(name), "VirtualDisk")[0].deviceInfo.label
    lab.ok("vm", "reconfigure", name, "--disk-grow", label, "40G")
    lab.ok("vm", "reconfigure", name, "--disk-grow", "Hard disk 1", "48G")
    assert devices_of(lab.get(name), "VirtualDisk")[0].capacityInKB == 48 * GIB_KB
    same = lab.ok("vm", "reconfigure", name, "--cpus", "4", "--disk-grow", "1", "48G")
    assert same["result"]["changed"] is False and "reconfigure" not in steps_of(same)
    assert calls_of(same) == []


def test_hot_add_is_required_on_a_running_vm(lab: Lab) -> None:
    name = lab.vm("hot", power_on=True)
    before = lab.job_count()
    lab.refused(["vm", "reconfigure", name, "--cpus", "4"], 5, "CPU hot-add is disabled")
    lab.refused(["vm", "reconfigure", name, "--memory", "4G"], 5, "memory hot-add is disabled")
    assert _hardware(lab.get(name))[:2] == (2, 2048) and lab.job_count() == before

    vm = lab.get(name)
    wait(vm.PowerOffVM_Task())
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(cpuHotAddEnabled=True, memoryHotAddEnabled=True)))
    wait(vm.PowerOnVM_Task())
    lab.ok("vm", "reconfigure", name, "--cpus", "4", "--memory", "4G")
    vm = lab.get(name)
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (4, 4096)
    assert vm.runtime.powerState == "poweredOn"
    lab.refused(["vm", "reconfigure", name, "--memory", "2G"], 5, "memory cannot shrink while it runs")
    lab.refused(["vm", "reconfigure", name, "--cpus", "2"], 5, "CPU hot-remove is disabled")
    # A running VM has no IDE slot to hot-add a CD-ROM to.
    lab.refused(["vm", "reconfigure", name, "--iso", _iso(lab)], 5, "IDE controller while it runs")


def test_refusals_change_nothing(lab: Lab) -> None:
    name = lab.vm("rfs")
    snapped = lab.vm("snp")
    lab.get(snapped).CreateSnapshot_Task(name="s", description="", memory=False, quiesce=False)
    template = lab.vm("tmpl")
    assert lab.cli("template", "add", template, "--host", lab.host).exit_code in (0, 1)
    missing = "[LocalDS_0] iso/missing-0.iso"
    cases: list[tuple[list[str], int, str]] = [
        ([name], 2, "nothing to change"),
        ([name, "--disk-grow", "1", "8G"], 2, "disks only grow"),
        ([name, "--disk-grow", "3", "40G"], 2, "the VM has 1 disk(s)"),
        ([name, "--disk-grow", "Hard disk 9", "40G"], 2, "the VM has 1 disk(s)"),
        ([name, "--disk-grow", "scratch", "40G"], 2, "no disk 'scratch'"),
        ([name, "--disk-grow", "1", "big"], 2, "--disk-grow size"),
        ([name, "--iso", "ubuntu.iso"], 2, "is not a datastore path"),
        ([name, "--iso", "[LocalDS_0] ../etc/x.iso"], 2, "without . or .."),
        ([name, "--iso", "[LocalDS_0] iso/x.img"], 2, "does not name an .iso file"),
        ([name, "--iso", "[LocalDS_0] iso/*.iso"], 2, "* ? [ ]"),
        ([name, "--iso", missing], 4, f"no file {missing}"),
        ([name, "--iso", "[NoSuchDS] iso/x.iso"], 4, "no datastore 'NoSuchDS'"),
        ([name, "--iso", missing, "--eject-iso"], 2, "exclude each other"),
        ([name, "--network", "no-such-pg"], 4, "no network 'no-such-pg'"),
        ([name, "--network", "VM Network", "--nic", "2"], 2, "--nic 2: the VM has 1 NIC(s)"),
        ([name, "--nic", "1"], 2, "pass --network too"),
        ([name, "--cpus", "0"], 2, "--cpus 0"),
        ([name, "--cpus", "3", "--memory", "lots"], 2, "memory 'lots'"),
        ([name, "--memory", "3M"], 2, "multiple of 4 MiB"),
        (["nope-404", "--cpus", "4"], 4, "no VM named"),
        ([template, "--cpus", "4"], 5, "registered template"),
        ([snapped, "--disk-grow", "1", "40G"], 5, "has snapshots"),
    ]
    state = {n: _hardware(lab.get(n)) for n in (name, snapped, template)}
    before = lab.job_count()
    for args, code, fragment in cases:
        lab.refused(["vm", "reconfigure", *args], code, fragment)
    assert {n: _hardware(lab.get(n)) for n in state} == state
    assert lab.job_count() == before
