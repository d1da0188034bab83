"""The SSH route of an import (hosts whose API cannot write): convert, upload, write the .vmx, register.

Each stream-optimized disk is converted on the worker as it streams from the source
(:func:`ceso.images.vmdk.read_grains`) and written over SFTP as a thin VMFS disk: the grains
that hold data, each at its offset, into ``NAME-flat.vmdk`` (holes stay holes), then its
descriptor ``NAME.vmdk`` (:func:`ceso.images.vmdk.flat_descriptor`), by the SSH backend
(:meth:`ceso.backends.ssh.SshVmBackend.write_thin_disk`); this module holds no SSH client. The VM is the OVF's
hardware as a ConfigSpec (:func:`config_spec`), which the SSH backend writes as a complete
``.vmx`` and registers with ``vim-cmd solo/registervm``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ceso.backends.paths import datastore_path, random_static_mac
from ceso.backends.ssh import SshVmBackend
from ceso.backends.vmomi import vim
from ceso.images.ovf import OvfImage
from ceso.images.package import DiskStream
from ceso.images.vmdk import read_grains, read_header

__all__ = ["config_spec", "disk_paths", "upload_thin"]

_SCSI_CLASSES = {
    "pvscsi": "ParaVirtualSCSIController",
    "lsilogic": "VirtualLsiLogicController",
    "lsisas1068": "VirtualLsiLogicSASController",
    "buslogic": "VirtualBusLogicController",
}
_NIC_CLASSES = {"vmxnet3": "VirtualVmxnet3", "e1000": "VirtualE1000", "e1000e": "VirtualE1000e"}


def disk_paths(datastore: str, name: str, count: int) -> list[str]:
    """``[ds] NAME/NAME.vmdk``, ``NAME_1.vmdk``, ...: the names ``vm create`` gives disks too."""
    return [datastore_path(datastore, f"{name}/{name}{'' if i == 0 else f'_{i}'}.vmdk") for i in range(count)]


def upload_thin(ops: SshVmBackend, disk: DiskStream, dest: str, *, adapter: str) -> int:
    """Convert ``disk`` and write it as the thin VMFS disk ``dest`` (``[ds] dir/x.vmdk``); returns
    the data bytes written (the disk's allocated size)."""
    header = read_header(disk.reader)
    return ops.write_thin_disk(dest, read_grains(disk.reader, header), header.capacity_bytes, adapter=adapter)


def config_spec(
    image: OvfImage,
    *,
    name: str,
    datastore: str,
    network: str,
    paths: list[str],
    macs: Callable[[], str],
    extra: dict[str, str],
) -> Any:
    """The ConfigSpec of the imported VM: the OVF's CPUs, memory, guest, firmware, SCSI adapter,
    disks (already on the datastore, thin), NICs (all on ``network``, static MACs) and ``extra``
    as extraConfig."""
    v = vim()
    controller = getattr(v.vm.device, _SCSI_CLASSES[image.scsi])(key=-100, busNumber=0, sharedBus="noSharing")
    changes = [v.vm.device.VirtualDeviceSpec(operation="add", device=controller)]
    for i, (disk, path) in enumerate(zip(image.disks, paths, strict=True)):
        backing = v.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=path, diskMode="persistent", thinProvisioned=True
        )
        changes.append(
            v.vm.device.VirtualDeviceSpec(
                operation="add",
                device=v.vm.device.VirtualDisk(
                    key=-(200 + i),
                    controllerKey=-100,
                    unitNumber=disk.unit,
                    capacityInKB=disk.capacity_bytes // 1024,
                    backing=backing,
                ),
            )
        )
    for i, adapter in enumerate(image.nics):
        changes.append(
            v.vm.device.VirtualDeviceSpec(
                operation="add",
                device=getattr(v.vm.device, _NIC_CLASSES[adapter])(
                    key=-(300 + i),
                    addressType="manual",
                    macAddress=macs(),
                    backing=v.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
                    connectable=v.vm.device.VirtualDevice.ConnectInfo(
                        startConnected=True, allowGuestControl=True
                    ),
                ),
            )
        )
    return v.vm.ConfigSpec(
        name=name,
        guestId=image.guest_id,
        numCPUs=image.cpus,
        memoryMB=image.memory_mb,
        firmware=image.firmware,
        version=image.hardware_version or "vmx-13",
        files=v.vm.FileInfo(vmPathName=datastore_path(datastore, f"{name}/{name}.vmx")),
        deviceChange=changes,
        extraConfig=[v.option.OptionValue(key=k, value=val) for k, val in extra.items()],
    )


def mac_source(ops: SshVmBackend) -> Callable[[], str]:
    """New static MACs, none in use on the host nor handed out before."""
    taken = ops.macs_in_use()

    def next_mac() -> str:
        mac = random_static_mac(taken)
        taken.add(mac)
        return mac

    return next_mac
