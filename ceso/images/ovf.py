"""OVF descriptors: what a package holds, what ceso refuses, and the descriptor it imports.

:func:`parse_descriptor` reads an OVF 1.x/2.x envelope into an :class:`OvfImage` and refuses,
before anything is made on a host, what ceso cannot import faithfully:

* more than one virtual machine (a ``VirtualSystemCollection``: a vApp);
* a vApp property other than the cloud-init OVF data source's own (``instance-id``,
  ``hostname``, ``seedfrom``, ``public-keys``, ``user-data``, ``password``). ceso configures
  guests through guestinfo (cloud-init's VMware data source) when it creates a VM, so those
  are dropped; any other property would be silently lost, so it is refused;
* a disk that is not a stream-optimized VMDK, a compressed or chunked file;
* a device class it cannot give the VM (an item of a resource type outside :data:`_KNOWN`).

The descriptor handed to ``OvfManager.CreateImportSpec`` is :func:`import_descriptor`: the
same envelope without its ProductSection and OVF environment transport, so the VM gets no vApp
options (which would make cloud-init prefer the OVF environment over guestinfo).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ceso.errors import InvalidInputError

__all__ = [
    "CLOUD_INIT_PROPERTIES",
    "MAX_DESCRIPTOR_BYTES",
    "STREAM_OPTIMIZED",
    "OvfDisk",
    "OvfImage",
    "descriptor_for_disk",
    "import_descriptor",
    "parse_descriptor",
]

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VMW = "http://www.vmware.com/schema/ovf"
STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
#: A descriptor is a few KiB; one larger than this is not read.
MAX_DESCRIPTOR_BYTES = 1 << 20
#: vApp properties of cloud-init's OVF data source, replaced by guestinfo at ``vm create``.
CLOUD_INIT_PROPERTIES = frozenset(
    {"instance-id", "hostname", "seedfrom", "public-keys", "user-data", "password"}
)

# CIM resource types: what each item is and whether ceso keeps it.
_CPU, _MEMORY, _IDE, _SCSI, _NIC, _FLOPPY, _CDROM, _DISK, _USB, _VIDEO = 3, 4, 5, 6, 10, 14, 15, 17, 23, 24
_OTHER_STORAGE = 20  # SATA (vmware.sata.ahci) and NVMe controllers
# Kept or harmlessly left out: VMCI (1), drives without media, USB, video, sound (35).
_KNOWN = {1, _CPU, _MEMORY, _IDE, _SCSI, _NIC, _FLOPPY, _CDROM, _DISK, _USB, _VIDEO, _OTHER_STORAGE, 35}
_SCSI_KINDS = {
    "lsilogic": "lsilogic",
    "virtualscsi": "pvscsi",
    "lsilogicsas": "lsisas1068",
    "buslogic": "buslogic",
}
_NIC_KINDS = {"vmxnet3": "vmxnet3", "e1000": "e1000", "e1000e": "e1000e"}
_UNIT = re.compile(r"^byte(?:\s*\*\s*(\d+)\s*\^\s*(\d+))?$")


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass(frozen=True)
class OvfDisk:
    """One disk of the VM: the package file that holds it and its size."""

    disk_id: str
    href: str
    capacity_bytes: int
    controller: str  # "scsi": the first SCSI controller is the only placement imported
    unit: int
    declared_size: int | None  # the References entry's ovf:size, if given


@dataclass(frozen=True)
class OvfImage:
    """The one VM of a package, as ceso imports it."""

    name: str
    guest_id: str
    cpus: int
    memory_mb: int
    firmware: str  # bios or efi
    hardware_version: str | None
    scsi: str  # the SCSI adapter's .vmx name: pvscsi, lsilogic, ...
    nics: list[str]  # the adapters' .vmx names, in order
    networks: list[str]  # the OVF network names the NICs connect to, in order
    disks: list[OvfDisk]
    dropped_properties: list[str] = field(default_factory=list)


def _attr(el: ET.Element, name: str, ns: str = OVF) -> str | None:
    return el.get(_q(ns, name)) or el.get(name)


def _text(el: ET.Element, ns: str, tag: str) -> str | None:
    found = el.find(_q(ns, tag))
    return found.text.strip() if found is not None and found.text else None


def _bytes(value: str, unit: str | None, what: str) -> int:
    match = _UNIT.match((unit or "byte").strip())
    if not match or not value.strip().isdigit():
        raise InvalidInputError(f"the OVF gives {what} as {value!r} {unit!r}, which ceso cannot read")
    base, power = (int(match.group(1)), int(match.group(2))) if match.group(1) else (1, 0)
    total: int = int(value) * base**power
    return total


def _refuse(reason: str) -> InvalidInputError:
    return InvalidInputError(f"the OVF package cannot be imported: {reason}; nothing was made")


def _envelope(text: str) -> ET.Element:
    if len(text.encode()) > MAX_DESCRIPTOR_BYTES:
        raise _refuse(f"its descriptor is larger than {MAX_DESCRIPTOR_BYTES} bytes")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise _refuse("its descriptor declares a DTD or entities")
    try:
        root = ET.fromstring(text)  # noqa: S314  # no DTD, no entities (refused above), size-capped
    except ET.ParseError as exc:
        raise _refuse(f"its descriptor is not well-formed XML ({exc})") from None
    if root.tag != _q(OVF, "Envelope"):
        raise _refuse("its descriptor is not an OVF envelope")
    return root


def parse_descriptor(text: str) -> OvfImage:
    """The one VM described by OVF descriptor ``text``; InvalidInputError naming what is unsupported."""
    root = _envelope(text)
    if root.find(_q(OVF, "VirtualSystemCollection")) is not None:
        raise _refuse("it holds a vApp (a VirtualSystemCollection); import one VM at a time")
    systems = root.findall(_q(OVF, "VirtualSystem"))
    if len(systems) != 1:
        raise _refuse(f"it describes {len(systems)} virtual machines; ceso imports exactly one")
    system = systems[0]
    dropped = _cloud_init_properties(system)
    hardware = system.find(_q(OVF, "VirtualHardwareSection"))
    if hardware is None:
        raise _refuse("its virtual machine has no VirtualHardwareSection")
    hw = _Hardware()
    for item in hardware.iter(_q(OVF, "Item")):
        hw.add(item)
    disks = _disks(root, hw)
    os_section = system.find(_q(OVF, "OperatingSystemSection"))
    guest_id = (_attr(os_section, "osType", VMW) if os_section is not None else None) or "otherLinux64Guest"
    return OvfImage(
        name=_attr(system, "id") or "vm",
        guest_id=guest_id,
        cpus=max(1, hw.cpus),
        memory_mb=max(4, hw.memory_mb),
        firmware=_firmware(hardware),
        hardware_version=_hardware_version(hardware),
        scsi=hw.scsi,
        nics=hw.nics,
        networks=hw.networks,
        disks=disks,
        dropped_properties=dropped,
    )


def _cloud_init_properties(system: ET.Element) -> list[str]:
    """The vApp property keys to drop (cloud-init's own); refuses any other."""
    dropped = []
    for product in system.iter(_q(OVF, "ProductSection")):
        for prop in product.iter(_q(OVF, "Property")):
            key = _attr(prop, "key") or ""
            if key not in CLOUD_INIT_PROPERTIES:
                raise _refuse(
                    f"vApp property {key!r} has no place in a ceso VM (ceso configures guests through "
                    "cloud-init guestinfo; only cloud-init's own OVF properties are replaced)"
                )
            dropped.append(key)
    return dropped


class _Hardware:
    """The VirtualHardwareSection's items, collected one by one."""

    def __init__(self) -> None:
        self.cpus, self.memory_mb, self.scsi = 1, 1024, "lsilogic"
        self.nics: list[str] = []
        self.networks: list[str] = []
        self.controllers: dict[str, tuple[str, int]] = {}  # InstanceID → (bus kind, bus number)
        self.disk_items: list[ET.Element] = []

    def _controller(self, instance: str, kind: str) -> None:
        self.controllers[instance] = (kind, sum(1 for c in self.controllers.values() if c[0] == kind))

    def add(self, item: ET.Element) -> None:
        kind = int(_text(item, RASD, "ResourceType") or 0)
        sub = (_text(item, RASD, "ResourceSubType") or "").lower()
        instance = _text(item, RASD, "InstanceID") or ""
        if kind not in _KNOWN:
            if (_attr(item, "required") or "true").lower() != "false":
                raise _refuse(
                    f"it needs a device of resource type {kind} ({_text(item, RASD, 'ElementName')})"
                )
        elif kind == _CPU:
            self.cpus = int(_text(item, RASD, "VirtualQuantity") or 1)
        elif kind == _MEMORY:
            unit = _text(item, RASD, "AllocationUnits") or "byte * 2^20"
            self.memory_mb = (
                _bytes(_text(item, RASD, "VirtualQuantity") or "0", unit, "the memory size") // 2**20
            )
        elif kind == _SCSI:
            if sub not in _SCSI_KINDS:
                raise _refuse(f"its SCSI controller is of a kind ceso does not know ({sub!r})")
            if not any(c[0] == "scsi" for c in self.controllers.values()):
                self.scsi = _SCSI_KINDS[sub]
            self._controller(instance, "scsi")
        elif kind in (_IDE, _OTHER_STORAGE):
            self._controller(instance, "ide" if kind == _IDE else "sata")
        elif kind == _NIC:
            if sub not in _NIC_KINDS:
                raise _refuse(f"its network adapter is of a kind ceso does not know ({sub!r})")
            self.nics.append(_NIC_KINDS[sub])
            self.networks.append(_text(item, RASD, "Connection") or "VM Network")
        elif kind == _DISK:
            self.disk_items.append(item)


def _disks(root: ET.Element, hw: _Hardware) -> list[OvfDisk]:
    """The VM's disks with their files; refuses a disk ceso cannot convert or place."""
    files: dict[str, ET.Element] = {}
    for f in root.iterfind(f"{_q(OVF, 'References')}/{_q(OVF, 'File')}"):
        if _attr(f, "compression") or _attr(f, "chunkSize"):
            raise _refuse(f"file {_attr(f, 'href')!r} is compressed or chunked")
        files[_attr(f, "id") or ""] = f
    sections = {
        _attr(d, "diskId") or "": d for d in root.iterfind(f"{_q(OVF, 'DiskSection')}/{_q(OVF, 'Disk')}")
    }
    disks = []
    for n, item in enumerate(hw.disk_items):
        resource = _text(item, RASD, "HostResource") or ""
        disk = sections.get(resource.rsplit("/", 1)[-1])
        if disk is None:
            raise _refuse(f"a disk item refers to {resource!r}, which the DiskSection lacks")
        disk_id = _attr(disk, "diskId") or ""
        if (_attr(disk, "format") or "") != STREAM_OPTIMIZED:
            raise _refuse(f"disk {disk_id!r} has format {_attr(disk, 'format')}, not a stream-optimized VMDK")
        file = files.get(_attr(disk, "fileRef") or "")
        if file is None:
            raise _refuse(f"disk {disk_id!r} has no file (an empty disk); ceso imports disks with data")
        if hw.controllers.get(_text(item, RASD, "Parent") or "") != ("scsi", 0):
            raise _refuse(
                f"disk {disk_id!r} is not on the first SCSI controller, the only placement ceso imports"
            )
        href = _attr(file, "href") or ""
        if "/" in href or "\\" in href or href in ("", ".", ".."):
            raise _refuse(f"disk file {href!r} is not a plain file name")
        address = _text(item, RASD, "AddressOnParent") or ""
        size = _attr(file, "size") or ""
        disks.append(
            OvfDisk(
                disk_id=disk_id,
                href=href,
                capacity_bytes=_bytes(
                    _attr(disk, "capacity") or "0",
                    _attr(disk, "capacityAllocationUnits"),
                    "a disk's capacity",
                ),
                controller="scsi",
                unit=int(address)
                if address.isdigit() and int(address) not in (7,) and int(address) < 16
                else n,
                declared_size=int(size) if size.isdigit() else None,
            )
        )
    if not disks:
        raise _refuse("its virtual machine has no disk")
    return disks


def _firmware(hardware: ET.Element) -> str:
    for config in hardware.iter(_q(VMW, "Config")):
        if _attr(config, "key", VMW) == "firmware":
            return "efi" if (_attr(config, "value", VMW) or "").lower() == "efi" else "bios"
    return "bios"


def _hardware_version(hardware: ET.Element) -> str | None:
    """The newest ``vmx-N`` the VirtualSystemType lists (it may list several)."""
    system_type = hardware.find(f"{_q(OVF, 'System')}/{_q(VSSD, 'VirtualSystemType')}")
    if system_type is None or not system_type.text:
        return None
    versions = [v for v in re.split(r"[\s,]+", system_type.text.strip()) if re.fullmatch(r"vmx-\d+", v)]
    return max(versions, key=lambda v: int(v[4:])) if versions else None


def import_descriptor(text: str) -> str:
    """``text`` without its ProductSections and the hardware's OVF environment transport."""
    root = _envelope(text)
    for system in root.iter(_q(OVF, "VirtualSystem")):
        for product in system.findall(_q(OVF, "ProductSection")):
            system.remove(product)
        for hardware in system.iter(_q(OVF, "VirtualHardwareSection")):
            hardware.attrib.pop(_q(OVF, "transport"), None)
    for prefix, uri in (("ovf", OVF), ("rasd", RASD), ("vssd", VSSD), ("vmw", VMW)):
        ET.register_namespace(prefix, uri)
    return ET.tostring(root, encoding="unicode")


def descriptor_for_disk(href: str, capacity_bytes: int, size: int, *, name: str) -> str:
    """An OVF descriptor for a lone stream-optimized VMDK: an Ubuntu 64-bit VM with 2 CPUs,
    2 GiB, a paravirtual SCSI controller and one vmxnet3 adapter on "VM Network"."""
    env = ET.Element(_q(OVF, "Envelope"))
    refs = ET.SubElement(env, _q(OVF, "References"))
    ET.SubElement(
        refs, _q(OVF, "File"), {_q(OVF, "href"): href, _q(OVF, "id"): "file1", _q(OVF, "size"): str(size)}
    )
    ds = ET.SubElement(env, _q(OVF, "DiskSection"))
    ET.SubElement(ds, _q(OVF, "Info")).text = "Virtual disk information"
    ET.SubElement(
        ds,
        _q(OVF, "Disk"),
        {
            _q(OVF, "capacity"): str(capacity_bytes),
            _q(OVF, "capacityAllocationUnits"): "byte",
            _q(OVF, "diskId"): "vmdisk1",
            _q(OVF, "fileRef"): "file1",
            _q(OVF, "format"): STREAM_OPTIMIZED,
        },
    )
    net = ET.SubElement(env, _q(OVF, "NetworkSection"))
    ET.SubElement(net, _q(OVF, "Info")).text = "Networks"
    ET.SubElement(net, _q(OVF, "Network"), {_q(OVF, "name"): "VM Network"})
    system = ET.SubElement(env, _q(OVF, "VirtualSystem"), {_q(OVF, "id"): name})
    ET.SubElement(system, _q(OVF, "Info")).text = "A virtual machine"
    os_section = ET.SubElement(
        system, _q(OVF, "OperatingSystemSection"), {_q(OVF, "id"): "94", _q(VMW, "osType"): "ubuntu64Guest"}
    )
    ET.SubElement(os_section, _q(OVF, "Info")).text = "The guest operating system"
    hw = ET.SubElement(system, _q(OVF, "VirtualHardwareSection"))
    ET.SubElement(hw, _q(OVF, "Info")).text = "Virtual hardware"
    sys_el = ET.SubElement(hw, _q(OVF, "System"))
    ET.SubElement(sys_el, _q(VSSD, "ElementName")).text = "Virtual Hardware Family"
    ET.SubElement(sys_el, _q(VSSD, "InstanceID")).text = "0"
    ET.SubElement(sys_el, _q(VSSD, "VirtualSystemType")).text = "vmx-13"

    def item(kind: int, instance: int, name: str, **fields: str) -> None:
        el = ET.SubElement(hw, _q(OVF, "Item"))
        values = {"ElementName": name, "InstanceID": str(instance), "ResourceType": str(kind), **fields}
        for key in sorted(values):
            ET.SubElement(el, _q(RASD, key)).text = values[key]

    item(_CPU, 1, "2 virtual CPUs", VirtualQuantity="2", AllocationUnits="hertz * 10^6")
    item(_MEMORY, 2, "2048 MB of memory", VirtualQuantity="2048", AllocationUnits="byte * 2^20")
    item(_SCSI, 3, "SCSI Controller 0", ResourceSubType="VirtualSCSI")
    item(_DISK, 4, "Hard Disk 1", HostResource="ovf:/disk/vmdisk1", Parent="3", AddressOnParent="0")
    item(_NIC, 5, "Network adapter 1", ResourceSubType="VmxNet3", Connection="VM Network")
    for prefix, uri in (("ovf", OVF), ("rasd", RASD), ("vssd", VSSD), ("vmw", VMW)):
        ET.register_namespace(prefix, uri)
    return ET.tostring(env, encoding="unicode")
