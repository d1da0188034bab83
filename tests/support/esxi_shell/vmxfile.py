"""The emulated hostd's reading of a .vmx and a .vmdk descriptor, and its GuestInfo printout.

Written independently of ceso.ssh.vmx on purpose: the emulator must read
what ceso wrote the way ESXi would, not the way ceso thinks it would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import emulator as emu

SCSI = {
    "pvscsi": "ParaVirtualSCSIController",
    "lsilogic": "VirtualLsiLogicController",
    "lsisas1068": "VirtualLsiLogicSASController",
    "buslogic": "VirtualBusLogicController",
}
NICS = {
    "vmxnet3": "VirtualVmxnet3",
    "e1000": "VirtualE1000",
    "e1000e": "VirtualE1000e",
    "vmxnet2": "VirtualVmxnet2",
    "vmxnet": "VirtualVmxnet",
    "vlance": "VirtualPCNet32",
    "vrdma": "VirtualVmxnet3Vrdma",
}


def guests() -> dict[str, str]:
    """hostd's guestOS table (guest_os_keys.txt beside this file), keyed by the lower-cased .vmx value."""
    lines = (Path(__file__).with_name("guest_os_keys.txt")).read_text(encoding="utf-8").splitlines()
    return {
        row[0].lower(): row[1]
        for row in (line.split() for line in lines)
        if row and not row[0].startswith("#")
    }


def guest_id(vmx: dict[str, str]) -> str:
    """The API guest id of the .vmx's guestOS; a value hostd does not know refuses the registration."""
    value = vmx.get("guestos", "other")
    known = guests().get(value.lower())
    if known is None:
        emu.print_fault("InvalidArgument", f"A specified parameter was not correct: guestOS {value!r}")
    return known


KNOWN = re.compile(
    r"^(\.encoding|config\.version|virtualhw\.version|displayname|guestos|numvcpus|memsize|nvram|firmware|uefi\..*|cpuid\.corespersocket|sched\.(mem|cpu)\.min|uuid\.bios|pcibridge\d+\..*|vmci0\..*|svga\..*|(scsi|sata|nvme|ide)\d+(:\d+)?\..*|ethernet\d+\..*|serial\d+\..*|usb\..*|ehci\..*|usb_xhci\..*)$",
    re.IGNORECASE,
)


# hostd's CD-ROM deviceTypes: (deviceType, clientDevice) -> backing class of vim.vm.device.VirtualCdrom.
CDROMS = {
    ("cdrom-image", False): "IsoBackingInfo",
    ("atapi-cdrom", False): "AtapiBackingInfo",
    ("cdrom-raw", False): "PassthroughBackingInfo",
    ("atapi-cdrom", True): "RemoteAtapiBackingInfo",
    ("cdrom-raw", True): "RemotePassthroughBackingInfo",
}
# hostd's serial port fileTypes -> (backing class of vim.vm.device.VirtualSerialPort, its field for fileName).
SERIALS = {
    "file": ("FileBackingInfo", "fileName"),
    "pipe": ("PipeBackingInfo", "pipeName"),
    "network": ("URIBackingInfo", "serviceURI"),
    "device": ("DeviceBackingInfo", "deviceName"),
}


def _flag(vmx: dict[str, str], key: str, default: bool = False) -> bool:
    value = vmx.get(key)
    if value is None:
        return default
    if value.upper() not in ("TRUE", "FALSE"):
        emu.die(f"Failed to parse the configuration file: {key} = {value!r} is not TRUE or FALSE")
    return value.upper() == "TRUE"


def _ds_path(name: str, vm_dir: str) -> str:
    return emu.datastore_path(name if name.startswith("/") else f"{vm_dir}/{name}")


def other_devices(vmx: dict[str, str], vm_dir: str, controllers: dict[str, int]) -> list[Any]:
    """CD-ROMs, serial ports and USB controllers; a type hostd does not know fails the registration."""
    from pyVmomi import vim

    d = vim.vm.device
    out: list[Any] = []
    for key in sorted(vmx):
        m = re.match(r"^((?:sata|ide)\d):(\d+)\.devicetype$", key)
        kind = vmx[key].lower()
        if (
            not m
            or not kind.startswith(("cdrom", "atapi"))
            or not _flag(vmx, f"{m.group(1)}:{m.group(2)}.present")
        ):
            continue
        slot = f"{m.group(1)}:{m.group(2)}"
        if m.group(1) not in controllers:
            emu.die(f"Failed to register: {slot} is on a controller that is not present")
        backing_name = CDROMS.get((kind, _flag(vmx, f"{slot}.clientdevice")))
        if backing_name is None:
            emu.die(f"Failed to register: {slot}.deviceType {kind!r} is not a CD-ROM type this host knows")
        name = vmx.get(f"{slot}.filename", "")
        cls = getattr(d.VirtualCdrom, backing_name)
        if backing_name == "IsoBackingInfo":
            backing = cls(fileName=_ds_path(name, vm_dir))
        elif backing_name.startswith("Remote"):
            backing = cls(deviceName="")
        else:
            backing = cls(deviceName=name)
        if "Passthrough" in backing_name:
            backing.exclusive = False
        out.append(
            d.VirtualCdrom(
                key=-(400 + len(out)),
                controllerKey=controllers[m.group(1)],
                unitNumber=int(m.group(2)),
                backing=backing,
                connectable=d.VirtualDevice.ConnectInfo(
                    startConnected=_flag(vmx, f"{slot}.startconnected", True), allowGuestControl=True
                ),
            )
        )
    for n in range(32):
        port = f"serial{n}"
        if not _flag(vmx, f"{port}.present"):
            continue
        kind = vmx.get(f"{port}.filetype", "").lower()
        if kind not in SERIALS:
            emu.die(f"Failed to register: {port}.fileType {kind!r} is not a serial port type this host knows")
        backing_name, field = SERIALS[kind]
        backing = getattr(d.VirtualSerialPort, backing_name)()
        name = vmx.get(f"{port}.filename", "")
        setattr(backing, field, _ds_path(name, vm_dir) if kind == "file" else name)
        if kind == "pipe":
            backing.endpoint = vmx.get(f"{port}.pipe.endpoint", "server").lower()
        elif kind == "network":
            backing.direction = vmx.get(f"{port}.network.endpoint", "server").lower()
        out.append(
            d.VirtualSerialPort(
                key=-(500 + n),
                backing=backing,
                yieldOnPoll=_flag(vmx, f"{port}.yieldonmsrread"),
                connectable=d.VirtualDevice.ConnectInfo(
                    startConnected=_flag(vmx, f"{port}.startconnected", True), allowGuestControl=True
                ),
            )
        )
    if _flag(vmx, "usb.present"):
        out.append(d.VirtualUSBController(key=-600, ehciEnabled=_flag(vmx, "ehci.present")))
    elif _flag(vmx, "ehci.present"):
        emu.die("Failed to register: ehci.present without usb.present")
    if _flag(vmx, "usb_xhci.present"):
        out.append(d.VirtualUSBXHCIController(key=-601))
    return [vim.vm.device.VirtualDeviceSpec(operation="add", device=dev) for dev in out]


def read_vmx(text: str) -> dict[str, str]:
    """``key = "value"`` lines, keys lower-cased, ``|XX`` escapes undone; other lines are an error."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r'^\s*([A-Za-z0-9_.:\-]+)\s*=\s*"(.*)"\s*$', line)
        if m is None:
            emu.die(f"Failed to parse the configuration file: line {line[:60]!r}")
        out[m.group(1).lower()] = re.sub(
            r"\|([0-9A-Fa-f]{2})", lambda h: chr(int(h.group(1), 16)), m.group(2)
        )
    return out


def disk_capacity_kb(descriptor: Path) -> tuple[int, bool]:
    text = descriptor.read_text(encoding="utf-8") if descriptor.is_file() else ""
    sectors = [int(n) for n in re.findall(r"^\s*RW\s+(\d+)\s", text, re.MULTILINE)]
    if not sectors:
        emu.die(f"Failed to open disk {descriptor.name}: not a virtual disk descriptor")
    return sum(sectors) // 2, 'ddb.thinProvisioned = "1"' in text


def config_spec(text: str, vmx_path: str, name: str | None) -> Any:
    """The ConfigSpec of the VM the .vmx at ``vmx_path`` describes (disks must exist)."""
    from pyVmomi import vim

    vmx = read_vmx(text)
    guest = guest_id(vmx)
    vm_dir = vmx_path.rsplit("/", 1)[0]
    changes = []
    controllers: dict[str, int] = {"ide0": 200, "ide1": 201}  # every VM has both, with no .vmx line
    for key in sorted(vmx):
        m = re.match(r"^(scsi|sata|nvme)(\d)\.present$", key)
        if m and vmx[key].upper() == "TRUE":
            bus, num = m.group(0).split(".")[0], int(m.group(2))
            ctl_key = -(100 + len(controllers))
            controllers[bus] = ctl_key
            if m.group(1) == "scsi":
                cls = getattr(
                    vim.vm.device, SCSI.get(vmx.get(f"{bus}.virtualdev", ""), "VirtualLsiLogicController")
                )
                dev = cls(key=ctl_key, busNumber=num, sharedBus="noSharing")
            elif m.group(1) == "sata":
                dev = vim.vm.device.VirtualAHCIController(key=ctl_key, busNumber=num)
            else:
                dev = vim.vm.device.VirtualNVMEController(key=ctl_key, busNumber=num)
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=dev))
    for key in sorted(vmx):
        m = re.match(r"^((?:scsi|sata|nvme|ide)\d):(\d+)\.filename$", key)
        if (
            not m
            or m.group(1) not in controllers
            or vmx.get(f"{m.group(1)}:{m.group(2)}.present", "").upper() != "TRUE"
            or vmx.get(f"{m.group(1)}:{m.group(2)}.devicetype", "").lower().startswith(("cdrom", "atapi"))
        ):
            continue  # not a disk: absent, or a CD-ROM (its own device, not emulated)
        file_name = vmx[key]
        full = file_name if file_name.startswith("/") else f"{vm_dir}/{file_name}"
        capacity_kb, thin = disk_capacity_kb(emu.host_path(full))
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=emu.datastore_path(full), diskMode="persistent", thinProvisioned=thin
        )
        disk = vim.vm.device.VirtualDisk(
            key=-(200 + len(changes)),
            controllerKey=controllers[m.group(1)],
            unitNumber=int(m.group(2)),
            capacityInKB=capacity_kb,
            backing=backing,
        )
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=disk))
    for n in range(10):
        eth = f"ethernet{n}"
        if vmx.get(f"{eth}.present", "").upper() != "TRUE":
            continue
        kind = vmx.get(f"{eth}.virtualdev", "e1000").lower()
        if kind not in NICS:
            emu.die(f"Failed to register: {eth} has an adapter type this host cannot emulate ({kind})")
        cls = getattr(vim.vm.device, NICS[kind])
        static = vmx.get(f"{eth}.addresstype", "generated").lower() == "static"
        slot = vmx.get(f"{eth}.pcislotnumber")
        if slot is not None and not slot.isdigit():
            emu.die(f"Failed to register: {eth}.pciSlotNumber {slot!r} is not a number")
        nic = cls(
            slotInfo=vim.vm.device.VirtualDevice.PciBusSlotInfo(pciSlotNumber=int(slot)) if slot else None,
            key=-(300 + n),
            addressType="manual" if static else "generated",
            macAddress=vmx.get(f"{eth}.address") if static else None,
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=vmx.get(f"{eth}.networkname", "VM Network")
            ),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(  # absent reads as TRUE, as in hostd
                startConnected=_flag(vmx, f"{eth}.startconnected", True),
                connected=_flag(vmx, f"{eth}.startconnected", True),
            ),
        )
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=nic))
    changes += other_devices(vmx, vm_dir, controllers)
    bios = vmx.get("uuid.bios", "").replace(" ", "").replace("-", "")
    uuid = f"{bios[:8]}-{bios[8:12]}-{bios[12:16]}-{bios[16:20]}-{bios[20:]}" if len(bios) == 32 else None
    extra = [vim.option.OptionValue(key=k, value=v) for k, v in vmx.items() if not KNOWN.match(k)]
    return vim.vm.ConfigSpec(
        name=name or vmx.get("displayname") or vm_dir.rsplit("/", 1)[-1],
        guestId=guest,
        numCPUs=int(vmx.get("numvcpus", "1")),
        memoryMB=int(vmx.get("memsize", "1024")),
        numCoresPerSocket=int(vmx.get("cpuid.corespersocket", "1")),
        memoryAllocation=vim.ResourceAllocationInfo(reservation=int(vmx.get("sched.mem.min", "0"))),
        cpuAllocation=vim.ResourceAllocationInfo(reservation=int(vmx.get("sched.cpu.min", "0"))),
        firmware=vmx.get("firmware", "bios"),
        bootOptions=vim.vm.BootOptions(
            efiSecureBootEnabled=vmx.get("uefi.secureboot.enabled", "").upper() == "TRUE"
        ),
        version=f"vmx-{vmx.get('virtualhw.version', '13')}",
        uuid=uuid,
        files=vim.vm.FileInfo(vmPathName=emu.datastore_path(vmx_path)),
        deviceChange=changes,
        extraConfig=extra,
    )


def guest_dump(guest: Any, reported: list[list[Any]] | None = None) -> str:
    """A ``vim.vm.GuestInfo`` as vim-cmd prints it (double-quoted strings, ``<unset>``).

    ``reported`` (``[[mac, [addresses]], ...]``) stands for what the guest's VMware Tools
    report instead of the simulator's guest.net: real tools list the IPv6 link-local address
    first, and loopback ones too.
    """
    if reported is not None:
        from pyVmomi import vim

        nics = [
            vim.vm.GuestInfo.NicInfo(
                network="VM Network", macAddress=mac, ipAddress=ips, connected=True, deviceConfigId=4000 + i
            )
            for i, (mac, ips) in enumerate(reported)
        ]
        guest = vim.vm.GuestInfo(
            toolsRunningStatus="guestToolsRunning",
            ipAddress=next((ip for _mac, ips in reported for ip in ips), None),
            net=nics,
            guestState="running",
        )

    def s(value: Any) -> str:
        return "<unset>" if value in (None, "") else f'"{value}"'

    lines = ["(vim.vm.GuestInfo) {"]
    for field in (
        "toolsStatus",
        "toolsVersionStatus2",
        "toolsRunningStatus",
        "toolsVersion",
        "guestId",
        "guestFamily",
        "guestFullName",
        "hostName",
        "ipAddress",
    ):
        lines.append(f"   {field} = {s(getattr(guest, field, None))},")
    nets = list(getattr(guest, "net", None) or [])
    if not nets:
        lines.append("   net = (vim.vm.GuestInfo.NicInfo) [],")
    else:
        lines.append("   net = (vim.vm.GuestInfo.NicInfo) [")
        for i, nic in enumerate(nets):
            lines.append("      (vim.vm.GuestInfo.NicInfo) {")
            lines.append(f"         network = {s(nic.network)},")
            ips = [f'            "{ip}"' for ip in nic.ipAddress or []]
            lines.append(
                "         ipAddress = (string) ["
                + ("\n" + ",\n".join(ips) + "\n         ]," if ips else "],")
            )
            lines.append(f"         macAddress = {s(nic.macAddress)},")
            lines.append(f"         connected = {'true' if nic.connected else 'false'},")
            lines.append(f"         deviceConfigId = {nic.deviceConfigId or 0},")
            lines.append("         dnsConfig = (vim.net.DnsConfigInfo) null,")
            lines.append("      }" + ("," if i < len(nets) - 1 else ""))
        lines.append("   ],")
    lines.append(f"   guestState = {s(getattr(guest, 'guestState', None) or 'notRunning')},")
    lines.append("}")
    return "\n".join(lines)
