"""What ``vm create`` and ``vm clone`` read of their source VM, in one request parsed as XML.

Provisioning (:mod:`ceso.operations.provision`) builds the new VM's
ConfigSpec from its source's hardware. Read through pyVmomi's deserializer,
the source's ``config.hardware.device`` is most of the "inspect source"
step (docs/benchmarks.md): pyVmomi builds a data object for every element of every device — IDE, PS/2, PCI and
SIO controllers, keyboard, mouse, video card, VMCI, each with its
``deviceInfo`` — of which provisioning copies only a few fields of a few
devices. Here the same ``RetrievePropertiesEx`` is parsed by ElementTree
(:func:`ceso.esxi.propxml.retrieve_object_xml`) and pyVmomi objects are
built only for what provisioning reads.

Contract of :func:`read_source`: the :data:`SOURCE_PROPERTIES` that are set,
valued as :meth:`EsxiClient.retrieve_object` values them (ints for the CPU
and memory counts, cores per socket and reservations, strings for the rest), except ``config.hardware.device``,
which holds only the SCSI, SATA and NVMe controllers, disks, network
adapters, CD-ROMs, serial ports and USB controllers, in the host's order, each
a pyVmomi object of the class its ``xsi:type`` names with only these fields
set (when the host sent them):

* every one: ``key``, ``controllerKey``, ``unitNumber``;
* controllers: ``busNumber``; SCSI controllers also ``sharedBus``;
* disks: ``capacityInKB``, ``capacityInBytes``, ``backing`` (its own class)
  with ``fileName``;
* network adapters: ``backing`` (its own class) with ``deviceName``, and
  ``slotInfo`` (a ``PciBusSlotInfo``) with ``pciSlotNumber``;
* CD-ROMs and serial ports: ``backing`` (its own class) with those of
  ``fileName``, ``deviceName``, ``pipeName``, ``endpoint``, ``serviceURI``,
  ``direction`` and ``exclusive`` its class has; serial ports also
  ``yieldOnPoll``;
* USB 2 controllers: ``ehciEnabled``.

``config.extraConfig`` holds only the :data:`CARRIED_EXTRA_CONFIG` entries.

That is every field :func:`ceso.operations.provision.build_config_spec` and
the steps around it read; a new reader of the source's devices must be added
here too (tests/vm/test_host_reads.py checks that the ConfigSpec built from
this read equals the one built from pyVmomi's). Devices of a type pyVmomi
does not know are left out, as are backings of such a type.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from ceso.backends.protocol import CARRIED_EXTRA_CONFIG, SOURCE_PROPERTIES
from ceso.backends.vmomi import vim
from ceso.esxi.propxml import VIM, XSI_TYPE, ObjectXml, retrieve_object_xml

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = ["SOURCE_PROPERTIES", "read_source"]

_INT_PROPERTIES = frozenset(
    {
        "config.hardware.numCPU",
        "config.hardware.memoryMB",
        "config.hardware.numCoresPerSocket",
        "config.memoryAllocation.reservation",
        "config.cpuAllocation.reservation",
    }
)
_DEVICE = "config.hardware.device"
_EXTRA = "config.extraConfig"
_CARRIED = frozenset(k.lower() for k in CARRIED_EXTRA_CONFIG)
_BACKING_FIELDS = ("fileName", "deviceName", "pipeName", "endpoint", "serviceURI", "direction")


def read_source(client: EsxiClient, vm: Any) -> dict[str, Any]:
    """:data:`SOURCE_PROPERTIES` of ``vm`` (see the module docstring), with ``obj``: ``vm``; one request."""
    row = retrieve_object_xml(client, "VirtualMachine", vm._moId, SOURCE_PROPERTIES, _source_row)
    return {"obj": vm, **(row or {})}


def _source_row(obj: ObjectXml) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, val in obj.props.items():
        if name == _DEVICE:
            row[name] = _devices(val)
        elif name == _EXTRA:
            row[name] = _carried_options(val)
        elif name in _INT_PROPERTIES:
            if val.text:
                row[name] = int(val.text)
        else:
            row[name] = val.text or ""
    return row


def _wsdl_class(element: ET.Element) -> Any:
    """The pyVmomi class ``element``'s ``xsi:type`` names, or None if pyVmomi has no such type."""
    from pyVmomi import VmomiSupport

    support: Any = VmomiSupport  # untyped, as everywhere (ceso.backends.vmomi)
    try:
        return support.GetWsdlType("urn:vim25", (element.get(XSI_TYPE) or "").rpartition(":")[2])
    except KeyError:
        return None


def _text(element: ET.Element, name: str) -> str | None:
    """The text of child ``name`` ("" if empty, as pyVmomi reads it), or None if there is none."""
    found = element.find(VIM + name)
    return None if found is None else (found.text or "")


def _set(obj: Any, element: ET.Element, name: str, *, number: bool = False) -> None:
    value = _text(element, name)
    if value is not None:
        setattr(obj, name, int(value) if number else value)


def _carried_options(val: ET.Element) -> list[Any]:
    """The :data:`CARRIED_EXTRA_CONFIG` entries of an ``ArrayOfOptionValue``; the rest is not kept."""
    out = []
    for element in val.iterfind(VIM + "OptionValue"):
        key = _text(element, "key") or ""
        if key.lower() in _CARRIED:
            out.append(vim().option.OptionValue(key=key, value=_text(element, "value") or ""))
    return out


def _backing(device: ET.Element, *fields: str) -> Any:
    element = device.find(VIM + "backing")
    cls = _wsdl_class(element) if element is not None else None
    if element is None or cls is None:
        return None
    backing = cls()
    for field in fields:
        value = _text(element, field)
        if value is not None:
            # A backing of another kind (a disk's raw device, a NIC's switch port) has no such field.
            with contextlib.suppress(AttributeError):
                setattr(backing, field, value)
    exclusive = _text(element, "exclusive")
    if exclusive is not None:
        with contextlib.suppress(AttributeError):
            backing.exclusive = exclusive == "true"
    return backing


def _devices(val: ET.Element) -> list[Any]:
    d = vim().vm.device
    controllers = (d.VirtualSCSIController, d.VirtualSATAController, d.VirtualNVMEController)
    usb = (d.VirtualUSBController, d.VirtualUSBXHCIController)
    kept = (*controllers, *usb, d.VirtualDisk, d.VirtualEthernetCard, d.VirtualCdrom, d.VirtualSerialPort)
    devices: list[Any] = []
    for element in val.iterfind(VIM + "VirtualDevice"):
        cls = _wsdl_class(element)
        if cls is None or not issubclass(cls, kept):
            continue
        dev = cls()
        for name in ("key", "controllerKey", "unitNumber"):
            _set(dev, element, name, number=True)
        if issubclass(cls, controllers):
            _set(dev, element, "busNumber", number=True)
            if issubclass(cls, d.VirtualSCSIController):
                _set(dev, element, "sharedBus")
        elif issubclass(cls, d.VirtualDisk):
            _set(dev, element, "capacityInKB", number=True)
            _set(dev, element, "capacityInBytes", number=True)
            dev.backing = _backing(element, "fileName")
        elif issubclass(cls, d.VirtualEthernetCard):
            dev.backing = _backing(element, "deviceName")
            slot = element.find(f"{VIM}slotInfo/{VIM}pciSlotNumber")
            if slot is not None and slot.text:
                dev.slotInfo = d.VirtualDevice.PciBusSlotInfo(pciSlotNumber=int(slot.text))
        elif issubclass(cls, (d.VirtualCdrom, d.VirtualSerialPort)):
            dev.backing = _backing(element, *_BACKING_FIELDS)
            if issubclass(cls, d.VirtualSerialPort):
                dev.yieldOnPoll = _text(element, "yieldOnPoll") == "true"
        elif issubclass(cls, d.VirtualUSBController):
            dev.ehciEnabled = _text(element, "ehciEnabled") == "true"
        devices.append(dev)
    return devices
