"""Make and read VMs on a simulated host directly with pyVmomi, independently of ceso.

Tests use these to set up inventory and to verify what ceso did without asking ceso.
"""

from __future__ import annotations

from typing import Any

import pyVmomi

vim: Any = pyVmomi.vim
vmodl: Any = pyVmomi.vmodl


def vm_config_spec(
    name: str,
    datastore: str,
    *,
    cpus: int = 2,
    memory_mb: int = 2048,
    disk_gb: int = 16,
    network: str = "VM Network",
    guest_id: str = "ubuntu64Guest",
) -> Any:
    """A small Ubuntu-like VM: pvscsi, one thin disk, one vmxnet3 NIC."""
    scsi = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.ParaVirtualSCSIController(key=-1, busNumber=0, sharedBus="noSharing"),
    )
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        fileOperation="create",
        device=vim.vm.device.VirtualDisk(
            key=-2,
            controllerKey=-1,
            unitNumber=0,
            capacityInKB=disk_gb * 1024 * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True
            ),
        ),
    )
    nic = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=-3,
            addressType="generated",
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
        ),
    )
    return vim.vm.ConfigSpec(
        name=name,
        guestId=guest_id,
        numCPUs=cpus,
        memoryMB=memory_mb,
        files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
        deviceChange=[scsi, disk, nic],
    )


def _parts(si: Any) -> tuple[Any, Any, Any]:
    content = si.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    compute = datacenter.hostFolder.childEntity[0]
    return datacenter, compute, compute.host[0]


def create_vm(si: Any, name: str, **kw: Any) -> Any:
    """Create a VM and return it; raises the task's fault."""
    datacenter, compute, host = _parts(si)
    spec = vm_config_spec(name, host.datastore[0].name, **kw)
    task = datacenter.vmFolder.CreateVM_Task(config=spec, pool=compute.resourcePool)
    if task.info.state != "success":
        raise task.info.error
    return task.info.result


def vm_by_name(si: Any, name: str) -> Any | None:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next((vm for vm in view.view if vm.name == name), None)
    finally:
        view.DestroyView()


def vm_names(si: Any) -> list[str]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return sorted(vm.name for vm in view.view)
    finally:
        view.DestroyView()


def destroy_vm(si: Any, name: str) -> None:
    vm = vm_by_name(si, name)
    if vm is not None:
        vm.Destroy_Task()


def make_template(si: Any, datastore_dir: Any, name: str, payload: bytes, **kw: Any) -> Any:
    """A template-like VM: powered off, thin disk holding ``payload``, VMware Tools 'installed'.

    The simulator creates disks as 0-byte files; the payload is written into the
    ``-flat.vmdk`` on disk so copies can be checked byte for byte.
    """
    vm = create_vm(si, name, **kw)
    # Simulator only: VMware Tools status is faked through an extraConfig key.
    task = vm.ReconfigVM_Task(
        spec=vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key="SET.guest.toolsStatus", value="toolsNotRunning")]
        )
    )
    assert task.info.state == "success"
    (datastore_dir / name / f"{name}-flat.vmdk").write_bytes(payload)
    return vm


def extra_config(vm: Any) -> dict[str, str]:
    """The VM's extraConfig as a dict (the last value wins, as ESXi keeps one per key)."""
    return {o.key: o.value for o in vm.config.extraConfig or []}


def devices_of(vm: Any, kind: str) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, getattr(vim.vm.device, kind))]


def read_property(si: Any, obj: Any, path: str) -> Any:
    """One property through the property collector (None when unset).

    Attribute access to an unset property (``vm.snapshot`` without snapshots)
    crashes the simulator's request; the collector simply omits it.
    """
    pc = si.RetrieveContent().propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=[path])],
    )
    result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    for oc in result.objects if result else []:
        for prop in oc.propSet or []:
            return prop.val
    return None


def snapshot_names(si: Any, vm: Any) -> list[str]:
    """Names of every snapshot of ``vm``, depth first."""
    tree = read_property(si, vm, "snapshot")

    def walk(nodes: Any) -> list[str]:
        return [n for node in nodes or [] for n in [node.name, *walk(node.childSnapshotList)]]

    return walk(tree.rootSnapshotList) if tree is not None else []
