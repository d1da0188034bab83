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
``disk.EnableUUID``). Also carried both ways: a NIC's PCI slot
(``ethernetN.pciSlotNumber``), CD-ROMs (``ideN:U``/``sataN:U`` with
``deviceType`` ``cdrom-image``, ``atapi-cdrom`` or ``cdrom-raw``, and
``clientDevice`` for the client's drive), serial ports (``serialN.fileType``
``file``, ``pipe``, ``network`` or ``device``, with ``fileName`` and
``pipe.endPoint``/``network.endPoint``), USB controllers (``usb.present``,
``ehci.present``, ``usb_xhci.present``) and each device's ``startConnected``.
A value of another kind is refused (InvalidInputError), never guessed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ceso.backends.protocol import CARRIED_EXTRA_CONFIG
from ceso.backends.vmomi import vim
from ceso.errors import InvalidInputError
from ceso.ssh.commands import from_datastore_path
from ceso.ssh.guestos import guest_id_from_vmx, vmx_guest_os
from ceso.ssh.vmx import Vmx, bios_uuid, uuid_from_bios

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
# A CD-ROM's deviceType and clientDevice flag by backing class (the .vmx's fileName holds its file or device).
_CDROM = {
    "IsoBackingInfo": ("cdrom-image", False),
    "AtapiBackingInfo": ("atapi-cdrom", False),
    "PassthroughBackingInfo": ("cdrom-raw", False),
    "RemoteAtapiBackingInfo": ("atapi-cdrom", True),
    "RemotePassthroughBackingInfo": ("cdrom-raw", True),
}
# A serial port's fileType by backing class, and the backing field its fileName holds.
_SERIAL = {
    "FileBackingInfo": ("file", "fileName"),
    "PipeBackingInfo": ("pipe", "pipeName"),
    "URIBackingInfo": ("network", "serviceURI"),
    "DeviceBackingInfo": ("device", "deviceName"),
}
_CLIENT_NO_FILE = "emptyBackingString"  # hostd's fileName for a CD-ROM of the client's drive
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


def _disk_file(datastore_path: str, vm_dir: str) -> str:
    path = from_datastore_path(datastore_path)
    return posixpath.basename(path) if posixpath.dirname(path) == vm_dir else path


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
    vmx[f"{slot}.fileName"] = _disk_file(dev.backing.fileName, vm_dir)


def _start_connected(dev: Any) -> str:
    return "TRUE" if dev.connectable is not None and dev.connectable.startConnected else "FALSE"


def _add_cdrom(vmx: Vmx, dev: Any, buses: dict[int, str], vm_dir: str) -> None:
    backing = _short(dev.backing) if dev.backing is not None else ""
    if dev.controllerKey not in buses or backing not in _CDROM:
        raise InvalidInputError(f"the SSH route cannot write a CD-ROM with a {backing or 'missing'} backing")
    slot = f"{buses[dev.controllerKey]}:{dev.unitNumber}"
    device_type, client = _CDROM[backing]
    vmx[f"{slot}.present"] = "TRUE"
    vmx[f"{slot}.deviceType"] = device_type
    if client:
        vmx[f"{slot}.clientDevice"] = "TRUE"
        vmx[f"{slot}.fileName"] = _CLIENT_NO_FILE
    elif backing == "IsoBackingInfo":
        vmx[f"{slot}.fileName"] = _disk_file(dev.backing.fileName, vm_dir)
    else:
        vmx[f"{slot}.fileName"] = dev.backing.deviceName or ""
    vmx[f"{slot}.startConnected"] = _start_connected(dev)


def _add_serial(vmx: Vmx, dev: Any, port: str) -> None:
    backing = _short(dev.backing) if dev.backing is not None else ""
    if backing not in _SERIAL:
        raise InvalidInputError(
            f"the SSH route cannot write a serial port with a {backing or 'missing'} backing"
        )
    file_type, field = _SERIAL[backing]
    vmx[f"{port}.present"] = "TRUE"
    vmx[f"{port}.fileType"] = file_type
    name = getattr(dev.backing, field) or ""
    vmx[f"{port}.fileName"] = (
        from_datastore_path(name) if file_type == "file" and name.startswith("[") else name
    )
    if file_type == "pipe":
        vmx[f"{port}.pipe.endPoint"] = dev.backing.endpoint or "server"
    elif file_type == "network":
        vmx[f"{port}.network.endPoint"] = "server" if dev.backing.direction == "server" else "client"
    vmx[f"{port}.yieldOnMsrRead"] = "TRUE" if dev.yieldOnPoll else "FALSE"
    vmx[f"{port}.startConnected"] = _start_connected(dev)


def _add_nic(vmx: Vmx, dev: Any, eth: str, *, generated: bool) -> None:
    vmx[f"{eth}.present"] = "TRUE"
    if _short(dev) not in _NIC_DEV:
        raise InvalidInputError(f"the SSH route cannot write a {_short(dev)} network adapter into a .vmx")
    vmx[f"{eth}.virtualDev"] = _NIC_DEV[_short(dev)]
    vmx[f"{eth}.networkName"] = dev.backing.deviceName
    vmx[f"{eth}.startConnected"] = "TRUE"
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
            _add_cdrom(vmx, dev, buses, vm_dir)
        elif kind == "VirtualSerialPort":
            _add_serial(vmx, dev, f"serial{serials}")
            serials += 1
        elif kind == "VirtualUSBController":
            vmx["usb.present"] = "TRUE"
            if dev.ehciEnabled:
                vmx["ehci.present"] = "TRUE"
        elif kind == "VirtualUSBXHCIController":
            vmx["usb_xhci.present"] = "TRUE"
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


def _connectable(vmx: Vmx, prefix: str) -> Any:
    started = vmx.get(f"{prefix}.startConnected")
    start = started is None or vmx.flag(f"{prefix}.startConnected")  # hostd connects what does not say
    return vim().vm.device.VirtualDevice.ConnectInfo(
        startConnected=start, connected=False, allowGuestControl=True
    )


def _cdroms(vmx: Vmx, vm_dir: str, buses: dict[str, int]) -> list[Any]:
    """The CD-ROMs on IDE and SATA buses; a CD-ROM ``deviceType`` ceso does not know is refused."""
    d = vim().vm.device.VirtualCdrom
    by_type = {(t, client): b for b, (t, client) in _CDROM.items()}
    out: list[Any] = []
    for bus, controller_key in buses.items():
        if not bus.startswith(("ide", "sata")):
            continue
        for unit in range(30):
            slot = f"{bus}:{unit}"
            kind = (vmx.get(f"{slot}.deviceType") or "").lower()
            if not vmx.flag(f"{slot}.present") or not kind.startswith(("cdrom", "atapi")):
                continue
            backing_name = by_type.get((kind, vmx.flag(f"{slot}.clientDevice")))
            if backing_name is None:
                raise InvalidInputError(
                    f'{slot}.deviceType = "{kind}": a CD-ROM type ceso cannot copy '
                    f"(known: {', '.join(sorted({t for t, _ in _CDROM.values()}))})"
                )
            name = vmx.get(f"{slot}.fileName") or ""
            cls = getattr(d, backing_name)
            if backing_name == "IsoBackingInfo":
                backing = cls(fileName=_datastore_path(name, vm_dir))
            elif backing_name.startswith("Remote"):
                backing = cls(
                    deviceName="", **({"exclusive": False} if "Passthrough" in backing_name else {})
                )
            else:
                backing = cls(
                    deviceName=name, **({"exclusive": False} if "Passthrough" in backing_name else {})
                )
            out.append(
                d(
                    key=3000 + len(out),
                    controllerKey=controller_key,
                    unitNumber=unit,
                    backing=backing,
                    connectable=_connectable(vmx, slot),
                )
            )
    return out


def _datastore_path(name: str, vm_dir: str) -> str:
    """A .vmx file name (relative to ``vm_dir``, or a /vmfs path) as a ``[ds] dir/file`` path."""
    path = name if name.startswith("/") else f"{vm_dir}/{name}"
    ds, _, rel = path.removeprefix("/vmfs/volumes/").partition("/")
    return f"[{ds}] {rel}"


def _serial_ports(vmx: Vmx, vm_dir: str) -> list[Any]:
    """The serial ports; a ``fileType`` ceso does not know is refused."""
    d = vim().vm.device.VirtualSerialPort
    by_type = {t: (b, field) for b, (t, field) in _SERIAL.items()}
    out: list[Any] = []
    for n in range(32):
        port = f"serial{n}"
        if not vmx.flag(f"{port}.present"):
            continue
        kind = (vmx.get(f"{port}.fileType") or "").lower()
        if kind not in by_type:
            raise InvalidInputError(
                f'{port}.fileType = "{kind}": a serial port type ceso cannot copy (known: {", ".join(sorted(by_type))})'
            )
        backing_name, field = by_type[kind]
        backing = getattr(d, backing_name)()
        name = vmx.get(f"{port}.fileName") or ""
        setattr(backing, field, _datastore_path(name, vm_dir) if kind == "file" else name)
        if kind == "pipe":
            backing.endpoint = (vmx.get(f"{port}.pipe.endPoint") or "server").lower()
        elif kind == "network":
            backing.direction = (
                "server" if (vmx.get(f"{port}.network.endPoint") or "").lower() == "server" else "client"
            )
        out.append(
            d(
                key=9000 + n,
                backing=backing,
                yieldOnPoll=vmx.flag(f"{port}.yieldOnMsrRead"),
                connectable=_connectable(vmx, port),
            )
        )
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
    devices += _cdroms(
        vmx, vm_dir, {"ide0": _IDE_KEY, "ide1": _IDE_KEY + 1, **{b: c.key for b, c in controllers.items()}}
    )
    devices += _serial_ports(vmx, vm_dir)
    if vmx.flag("usb.present"):
        devices.append(v.vm.device.VirtualUSBController(key=7000, ehciEnabled=vmx.flag("ehci.present")))
    if vmx.flag("usb_xhci.present"):
        devices.append(v.vm.device.VirtualUSBXHCIController(key=14000))
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
