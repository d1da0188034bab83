"""Between vSphere's VM description (ConfigSpec, devices) and a .vmx — what hostd does on ESXi.

The SSH route shares the API route's description of a new VM (a vSphere
``ConfigSpec``, built by :func:`ceso.operations.provision.build_config_spec`)
and writes it as a complete .vmx instead of calling CreateVM_Task; reading a
source VM goes the other way, from its .vmx (plus each disk's descriptor for
the capacity) to the same device objects the API returns. pyVmomi data
objects are plain values here: nothing is sent to any host.

Written for a new VM: ``config.version``, ``virtualHW.version``,
``displayName``, ``guestOS``, ``numvcpus``, ``memSize``, ``firmware`` (and
``uefi.secureBoot.enabled``),
``uuid.bios`` (never ``uuid.location``, which ESXi then writes itself),
controllers (``scsiN.present``/``virtualDev``, ``sataN``, ``nvmeN``; the IDE
controllers every VM has need no line), disks (``scsiN:U.fileName``,
``ideN:U``, ``sataN:U``, ``nvmeN:U``, relative when in the VM's directory), NICs
(``ethernetN.virtualDev``/``networkName``/``addressType = "static"`` and
``address``, or ``generated`` with no address line so ESXi makes one), PCIe
bridges for vmxnet3/pvscsi, and every extraConfig key (guestinfo.*,
``disk.EnableUUID``), and both ways a NIC's PCI slot
(``ethernetN.pciSlotNumber``), CD-ROMs, serial ports and USB controllers
(:mod:`ceso.ssh.vmxdevices`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ceso.backends.protocol import CARRIED_EXTRA_CONFIG
from ceso.backends.vmomi import vim
from ceso.errors import InvalidInputError
from ceso.ssh.guestos import guest_id_from_vmx, vmx_guest_os
from ceso.ssh.vmx import Vmx, bios_uuid, uuid_from_bios
from ceso.ssh.vmxdevices import (
    read_cdroms,
    read_serial_ports,
    read_usb_controllers,
    vmx_file_name,
    write_cdrom,
    write_serial_port,
    write_usb_controller,
)

__all__ = [
    "DiskFacts",
    "parse_descriptor",
    "properties_from_vmx",
    "vmx_from_spec",
]

_SCSI_DEV = {
    "ParaVirtualSCSIController": "pvscsi",
    "VirtualLsiLogicController": "lsilogic",
    "VirtualLsiLogicSASController": "lsisas1068",
    "VirtualBusLogicController": "buslogic",
}
_NIC_DEV = {
    "VirtualVmxnet3": "vmxnet3",
    "VirtualE1000": "e1000",
    "VirtualE1000e": "e1000e",
    "VirtualVmxnet2": "vmxnet2",
    "VirtualVmxnet": "vmxnet",
    "VirtualPCNet32": "vlance",
}
_KEY_BASE = {"scsi": 1000, "sata": 15000, "nvme": 31000}
_CARRIED = frozenset(k.lower() for k in CARRIED_EXTRA_CONFIG)
_IDE_KEY = 200  # ide0; ide1 is 201
_BRIDGES = [("pciBridge0.present", "TRUE")] + [
    (f"pciBridge{n}.{k}", v)
    for n in (4, 5, 6, 7)
    for k, v in (("present", "TRUE"), ("virtualDev", "pcieRootPort"), ("functions", "8"))
]


def _short(obj: Any) -> str:
    return type(obj).__name__.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class DiskFacts:
    """What a disk's descriptor says: capacity and whether it is thin."""

    capacity_bytes: int
    thin: bool


def parse_descriptor(text: str) -> DiskFacts:
    """Capacity (the sum of the extents' sectors x 512) and thinness of a .vmdk descriptor."""
    sectors = [int(m.group(1)) for m in re.finditer(r"^\s*RW\s+(\d+)\s", text, re.MULTILINE)]
    if not sectors:
        raise InvalidInputError("not a .vmdk descriptor: no 'RW <sectors> ...' extent line")
    thin = re.search(r'^\s*ddb\.thinProvisioned\s*=\s*"1"', text, re.MULTILINE) is not None
    return DiskFacts(capacity_bytes=sum(sectors) * 512, thin=thin)


def _add_controller(vmx: Vmx, dev: Any, buses: dict[int, str]) -> None:
    kind = _short(dev)
    prefix = "scsi" if kind in _SCSI_DEV else ("sata" if kind == "VirtualAHCIController" else "nvme")
    bus = f"{prefix}{dev.busNumber}"
    buses[dev.key] = bus
    vmx[f"{bus}.present"] = "TRUE"
    if prefix == "scsi":
        vmx[f"{bus}.virtualDev"] = _SCSI_DEV[kind]
        vmx[f"{bus}.sharedBus"] = "none"


def _add_disk(vmx: Vmx, dev: Any, buses: dict[int, str], vm_dir: str) -> None:
    if dev.controllerKey not in buses:
        raise InvalidInputError(f"disk {dev.backing.fileName} is on a controller the spec does not add")
    slot = f"{buses[dev.controllerKey]}:{dev.unitNumber}"
    vmx[f"{slot}.present"] = "TRUE"
    if buses[dev.controllerKey].startswith("scsi"):
        vmx[f"{slot}.deviceType"] = "scsi-hardDisk"
    vmx[f"{slot}.fileName"] = vmx_file_name(dev.backing.fileName, vm_dir)


def _add_nic(vmx: Vmx, dev: Any, eth: str, *, generated: bool) -> None:
    vmx[f"{eth}.present"] = "TRUE"
    if _short(dev) not in _NIC_DEV:
        raise InvalidInputError(f"the SSH route cannot write a {_short(dev)} network adapter into a .vmx")
    vmx[f"{eth}.virtualDev"] = _NIC_DEV[_short(dev)]
    vmx[f"{eth}.networkName"] = dev.backing.deviceName
    connect = dev.connectable is None or dev.connectable.startConnected
    vmx[f"{eth}.startConnected"] = "TRUE" if connect else "FALSE"
    if dev.slotInfo is not None and getattr(dev.slotInfo, "pciSlotNumber", None):
        vmx[f"{eth}.pciSlotNumber"] = str(dev.slotInfo.pciSlotNumber)
    if generated or not dev.macAddress:
        vmx[f"{eth}.addressType"] = "generated"  # no address line: ESXi generates the MAC
    else:
        vmx[f"{eth}.addressType"] = "static"
        vmx[f"{eth}.address"] = dev.macAddress


def _add_machine(vmx: Vmx, spec: Any) -> None:
    """Name, guest OS, CPUs (cores per socket), memory, reservations, firmware and BIOS UUID."""
    vmx["displayName"] = spec.name
    vmx["guestOS"] = vmx_guest_os(spec.guestId or "otherGuest64")
    vmx["numvcpus"] = str(spec.numCPUs or 1)
    vmx["memSize"] = str(spec.memoryMB or 1024)
    if spec.numCoresPerSocket:
        vmx["cpuid.coresPerSocket"] = str(spec.numCoresPerSocket)
    if spec.memoryAllocation is not None and spec.memoryAllocation.reservation:
        vmx["sched.mem.min"] = str(spec.memoryAllocation.reservation)  # MB
    if spec.cpuAllocation is not None and spec.cpuAllocation.reservation:
        vmx["sched.cpu.min"] = str(spec.cpuAllocation.reservation)  # MHz
    vmx["nvram"] = f"{spec.name}.nvram"
    if spec.firmware == "efi":
        vmx["firmware"] = "efi"
        if spec.bootOptions is not None and spec.bootOptions.efiSecureBootEnabled:
            vmx["uefi.secureBoot.enabled"] = "TRUE"
    if spec.uuid:
        vmx["uuid.bios"] = bios_uuid(spec.uuid)


def vmx_from_spec(spec: Any, *, vm_dir: str, generated_macs: bool = False) -> Vmx:
    """The complete .vmx of a new VM described by ``spec`` (all devices added by ``deviceChange``).

    ``vm_dir`` is the VM's directory (``/vmfs/volumes/ds/name``); disks in it
    are referred to by file name. With ``generated_macs`` the NICs get no
    address line and ESXi generates MACs at power-on. Raises InvalidInputError
    for a device the SSH route cannot describe.
    """
    vmx = Vmx(
        [("config.version", "8"), ("virtualHW.version", (spec.version or "vmx-13").removeprefix("vmx-"))]
    )
    _add_machine(vmx, spec)
    for key, value in _BRIDGES:
        vmx[key] = value
    vmx["vmci0.present"] = "TRUE"
    vmx["svga.present"] = "TRUE"
    buses: dict[int, str] = {_IDE_KEY: "ide0", _IDE_KEY + 1: "ide1"}  # every VM has them
    nics = serials = 0
    for change in spec.deviceChange or []:
        dev = change.device
        kind = _short(dev)
        if kind in _SCSI_DEV or kind in ("VirtualAHCIController", "VirtualNVMEController"):
            _add_controller(vmx, dev, buses)
        elif kind == "VirtualDisk":
            _add_disk(vmx, dev, buses, vm_dir)
        elif kind in _NIC_DEV:
            _add_nic(vmx, dev, f"ethernet{nics}", generated=generated_macs)
            nics += 1
        elif kind == "VirtualCdrom":
            write_cdrom(vmx, dev, buses, vm_dir)
        elif kind == "VirtualSerialPort":
            write_serial_port(vmx, dev, f"serial{serials}")
            serials += 1
        elif kind in ("VirtualUSBController", "VirtualUSBXHCIController"):
            write_usb_controller(vmx, dev)
        else:
            raise InvalidInputError(f"the SSH route cannot write a {kind} into a .vmx")
    for option in spec.extraConfig or []:
        vmx[option.key] = str(option.value)
    return vmx


def _controllers(vmx: Vmx) -> dict[str, Any]:
    """The present controllers by bus name (``scsi0``), keyed as ESXi keys them (1000+N, 15000+N, 31000+N)."""
    v = vim()
    scsi_types = {name: cls for cls, name in _SCSI_DEV.items()}
    out: dict[str, Any] = {}
    for prefix, base in _KEY_BASE.items():
        for bus in range(4):
            name = f"{prefix}{bus}"
            if not vmx.flag(f"{name}.present"):
                continue
            if prefix == "scsi":
                cls_name = scsi_types.get(vmx.get(f"{name}.virtualDev") or "", "VirtualLsiLogicController")
                out[name] = getattr(v.vm.device, cls_name)(
                    key=base + bus, busNumber=bus, sharedBus="noSharing"
                )
            elif prefix == "sata":
                out[name] = v.vm.device.VirtualAHCIController(key=base + bus, busNumber=bus)
            else:
                out[name] = v.vm.device.VirtualNVMEController(key=base + bus, busNumber=bus)
    return out


def properties_from_vmx(vmx: Vmx, *, vm_dir: str, disk_facts: Callable[[str], DiskFacts]) -> dict[str, Any]:
    """The vSphere properties provisioning reads (``config.hardware.device`` etc.) from a .vmx.

    ``vm_dir`` is the /vmfs directory of the .vmx (relative disk names are in
    it); ``disk_facts`` reads a disk's descriptor (given its /vmfs path). Disk
    file names are returned as datastore paths (``[ds] dir/file.vmdk``).
    """
    v = vim()
    controllers = _controllers(vmx)
    devices: list[Any] = list(controllers.values())
    disk_key = 2000
    # Every VM has its two IDE controllers (keys 200, 201) without a line for them; the API
    # route's source read leaves them out too, and a disk on one keeps that controller key.
    # IDE disks come first, as the BIOS boots them first (an imported VM's system disk).
    buses = [("ide0", _IDE_KEY), ("ide1", _IDE_KEY + 1), *((bus, c.key) for bus, c in controllers.items())]
    for bus, controller_key in buses:
        for unit in range(65):
            name = vmx.get(f"{bus}:{unit}.fileName")
            kind = (vmx.get(f"{bus}:{unit}.deviceType") or "").lower()
            if (
                name is None
                or not vmx.flag(f"{bus}:{unit}.present")
                or not name.endswith(".vmdk")
                or kind.startswith(("cdrom", "atapi"))
            ):
                continue
            path = name if name.startswith("/") else f"{vm_dir}/{name}"
            facts = disk_facts(path)
            disk_ds, _, rel = path.removeprefix("/vmfs/volumes/").partition("/")
            devices.append(
                v.vm.device.VirtualDisk(
                    key=disk_key,
                    controllerKey=controller_key,
                    unitNumber=unit,
                    capacityInKB=facts.capacity_bytes // 1024,
                    capacityInBytes=facts.capacity_bytes,
                    backing=v.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        fileName=f"[{disk_ds}] {rel}", diskMode="persistent", thinProvisioned=facts.thin
                    ),
                )
            )
            disk_key += 1
    devices += read_cdroms(
        vmx, vm_dir, {"ide0": _IDE_KEY, "ide1": _IDE_KEY + 1, **{b: c.key for b, c in controllers.items()}}
    )
    devices += read_serial_ports(vmx, vm_dir)
    devices += read_usb_controllers(vmx)
    nic_types = {name: cls for cls, name in _NIC_DEV.items()}
    for n in range(10):
        eth = f"ethernet{n}"
        if not vmx.flag(f"{eth}.present"):
            continue
        kind = (vmx.get(f"{eth}.virtualDev") or "e1000").lower()  # hostd's default when unset
        if kind not in nic_types:
            raise InvalidInputError(
                f'{eth}.virtualDev = "{kind}": a network adapter type ceso cannot copy '
                f"(known: {', '.join(sorted(nic_types))})"
            )
        cls = getattr(v.vm.device, nic_types[kind])
        static = (vmx.get(f"{eth}.addressType") or "").lower() == "static"
        slot = vmx.get(f"{eth}.pciSlotNumber") or ""
        devices.append(
            cls(
                slotInfo=v.vm.device.VirtualDevice.PciBusSlotInfo(pciSlotNumber=int(slot))
                if slot.isdigit()
                else None,
                key=4000 + n,
                addressType="manual" if static else "generated",
                macAddress=vmx.get(f"{eth}.address") if static else vmx.get(f"{eth}.generatedAddress"),
                backing=v.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                    deviceName=vmx.get(f"{eth}.networkName")
                ),
            )
        )
    extra = [
        v.option.OptionValue(key=k, value=val)
        for k, val in vmx.items()
        if k.lower().startswith(("guestinfo.", "ceso.")) or k.lower() in _CARRIED
    ]
    props: dict[str, Any] = {
        "name": vmx.get("displayName"),
        "config.hardware.device": devices,
        "config.hardware.numCPU": int(vmx.get("numvcpus") or 1),
        "config.hardware.numCoresPerSocket": int(vmx.get("cpuid.coresPerSocket") or 1),
        "config.hardware.memoryMB": int(vmx.get("memSize") or 0),
        "config.guestId": guest_id_from_vmx(vmx.get("guestOS") or "other"),
        "config.firmware": vmx.get("firmware") or "bios",
        "config.bootOptions.efiSecureBootEnabled": "true" if vmx.flag("uefi.secureBoot.enabled") else "false",
        "config.version": f"vmx-{vmx.get('virtualHW.version') or '13'}",
        "config.extraConfig": extra,
    }
    for key, prop in (
        ("sched.mem.min", "config.memoryAllocation.reservation"),
        ("sched.cpu.min", "config.cpuAllocation.reservation"),
    ):
        if (vmx.get(key) or "").isdigit():
            props[prop] = int(vmx[key])
    if vmx.get("uuid.bios"):
        props["config.uuid"] = uuid_from_bios(vmx["uuid.bios"])
    return props
