"""CD-ROMs, serial ports and USB controllers: between vSphere device objects and .vmx lines.

The part of :mod:`ceso.ssh.vmxspec` for the devices a clone keeps besides its
disks and NICs. Both ways, only these kinds are known (real hostd's values):

* CD-ROMs on an IDE or SATA slot (``ideN:U``/``sataN:U``): ``deviceType``
  ``cdrom-image`` (``fileName`` the ISO), ``atapi-cdrom`` or ``cdrom-raw``
  (``fileName`` the host device; with ``clientDevice = "TRUE"`` the client's
  drive, ``fileName = "emptyBackingString"``);
* serial ports ``serialN``: ``fileType`` ``file``, ``pipe`` (``pipe.endPoint``),
  ``network`` (a URI, ``network.endPoint``) or ``device``, ``yieldOnMsrRead``;
* ``usb.present`` (with ``ehci.present``: USB 2) and ``usb_xhci.present``.

Each CD-ROM and serial port carries ``startConnected`` (absent reads as TRUE,
as hostd does). A CD-ROM ``deviceType`` or serial ``fileType`` of another kind
is refused (InvalidInputError naming the line), never guessed.
"""

from __future__ import annotations

import posixpath
from typing import Any

from ceso.backends.vmomi import vim
from ceso.errors import InvalidInputError
from ceso.ssh.commands import from_datastore_path
from ceso.ssh.vmx import Vmx

__all__ = [
    "datastore_path_of",
    "read_cdroms",
    "read_serial_ports",
    "read_usb_controllers",
    "vmx_file_name",
    "write_cdrom",
    "write_serial_port",
    "write_usb_controller",
]

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


def _short(obj: Any) -> str:
    return type(obj).__name__.rsplit(".", 1)[-1]


def vmx_file_name(datastore_path: str, vm_dir: str) -> str:
    """A datastore path as the .vmx names it: the bare file name when it is in ``vm_dir``."""
    path = from_datastore_path(datastore_path)
    return posixpath.basename(path) if posixpath.dirname(path) == vm_dir else path


def datastore_path_of(name: str, vm_dir: str) -> str:
    """A .vmx file name (relative to ``vm_dir``, or a /vmfs path) as a ``[ds] dir/file`` path."""
    path = name if name.startswith("/") else f"{vm_dir}/{name}"
    ds, _, rel = path.removeprefix("/vmfs/volumes/").partition("/")
    return f"[{ds}] {rel}"


def _start_connected(dev: Any) -> str:
    return "TRUE" if dev.connectable is not None and dev.connectable.startConnected else "FALSE"


def write_cdrom(vmx: Vmx, dev: Any, buses: dict[int, str], vm_dir: str) -> None:
    """The lines of CD-ROM ``dev``; ``buses`` names the bus (``ide1``, ``sata0``) of each controller key."""
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
        vmx[f"{slot}.fileName"] = vmx_file_name(dev.backing.fileName, vm_dir)
    else:
        vmx[f"{slot}.fileName"] = dev.backing.deviceName or ""
    vmx[f"{slot}.startConnected"] = _start_connected(dev)


def write_serial_port(vmx: Vmx, dev: Any, port: str) -> None:
    """The lines of serial port ``dev`` as ``port`` (``serial0``)."""
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


def write_usb_controller(vmx: Vmx, dev: Any) -> None:
    """``usb.present`` (and ``ehci.present``) for a VirtualUSBController, ``usb_xhci.present`` for xHCI."""
    if _short(dev) == "VirtualUSBXHCIController":
        vmx["usb_xhci.present"] = "TRUE"
        return
    vmx["usb.present"] = "TRUE"
    if dev.ehciEnabled:
        vmx["ehci.present"] = "TRUE"


def _connectable(vmx: Vmx, prefix: str) -> Any:
    started = vmx.get(f"{prefix}.startConnected")
    start = started is None or vmx.flag(f"{prefix}.startConnected")  # hostd connects what does not say
    return vim().vm.device.VirtualDevice.ConnectInfo(
        startConnected=start, connected=False, allowGuestControl=True
    )


def read_cdroms(vmx: Vmx, vm_dir: str, buses: dict[str, int]) -> list[Any]:
    """The CD-ROMs on the IDE and SATA buses of ``buses`` (bus name → controller key), keys from 3000."""
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
                backing = cls(fileName=datastore_path_of(name, vm_dir))
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


def read_serial_ports(vmx: Vmx, vm_dir: str) -> list[Any]:
    """The serial ports, keyed 9000 + N; a file's name as a datastore path."""
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
        setattr(backing, field, datastore_path_of(name, vm_dir) if kind == "file" else name)
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


def read_usb_controllers(vmx: Vmx) -> list[Any]:
    """The USB controllers, keyed as ESXi keys them (7000 for USB 1/2, 14000 for xHCI)."""
    d = vim().vm.device
    out: list[Any] = []
    if vmx.flag("usb.present"):
        out.append(d.VirtualUSBController(key=7000, ehciEnabled=vmx.flag("ehci.present")))
    if vmx.flag("usb_xhci.present"):
        out.append(d.VirtualUSBXHCIController(key=14000))
    return out
