"""The hardware a clone carries besides disks and NICs, recorded in a backup so a restore carries it too.

At backup time the VM is read as ``vm clone`` reads its source
(``VmBackend.source_props``: :mod:`ceso.esxi.source` on the API route, the
.vmx through :mod:`ceso.ssh.vmxspec` over SSH), and :func:`record` keeps, in
the manifest's ``vm_config["carried"]``, what
:func:`ceso.operations.provision.build_config_spec` copies from a source:

* ``devices``: CD-ROMs (``controller_key``, ``unit``), serial ports
  (``yield_on_poll``), USB 2 (``ehci_enabled``) and USB 3 controllers, each
  with its ``type`` and, for a CD-ROM or serial port, its ``backing``
  (``type`` and the :data:`~ceso.backends.protocol.CARRIED_BACKING_FIELDS`
  its class has);
* ``nic_pci_slots``: each NIC's PCI slot (None for none), in the order of ``vm_config["nics"]``;
* ``extra_config``: the :data:`~ceso.backends.protocol.CARRIED_EXTRA_CONFIG` keys (``disk.EnableUUID``);
* ``cores_per_socket``, ``memory_reservation_mb``, ``cpu_reservation_mhz``;
* ``secure_boot``: an EFI VM's Secure Boot setting.

A restore as a new VM turns it back into the source's shape (:func:`devices`,
:func:`nic_slots`, :func:`props`) for ``build_config_spec``, which writes it as
for a clone: CD-ROMs and serial ports disconnected. A set recorded before this
field has none and restores without them; a device type this version does not
know is left out.
"""

from __future__ import annotations

from typing import Any

from ceso.backends.protocol import CARRIED_BACKING_FIELDS, CARRIED_EXTRA_CONFIG
from ceso.backends.vmomi import vim
from ceso.errors import OperationError

__all__ = ["devices", "nic_slots", "props", "record"]

_CARRIED = frozenset(k.lower() for k in CARRIED_EXTRA_CONFIG)
_TYPES = ("VirtualCdrom", "VirtualSerialPort", "VirtualUSBController", "VirtualUSBXHCIController")
_SECURE_BOOT = "config.bootOptions.efiSecureBootEnabled"  # text or bool, as build_config_spec reads it
_PROPS = {  # source property -> its name in the record
    "config.hardware.numCoresPerSocket": "cores_per_socket",
    "config.memoryAllocation.reservation": "memory_reservation_mb",
    "config.cpuAllocation.reservation": "cpu_reservation_mhz",
}


def _kind(obj: Any) -> str:
    return type(obj).__name__.rsplit(".", 1)[-1]


def _backing(backing: Any) -> dict[str, Any] | None:
    if backing is None:
        return None
    out: dict[str, Any] = {"type": _kind(backing)}
    for name in CARRIED_BACKING_FIELDS:
        value = getattr(backing, name, None)
        if value is not None:
            out[name] = value
    return out


def record(source: dict[str, Any]) -> dict[str, Any]:
    """The carried hardware of ``source`` (shaped as ``VmBackend.source_props``), as JSON values."""
    d = vim().vm.device
    out: list[dict[str, Any]] = []
    slots: list[int | None] = []
    for dev in source.get("config.hardware.device") or []:
        if isinstance(dev, d.VirtualEthernetCard):
            slots.append(getattr(dev.slotInfo, "pciSlotNumber", None) if dev.slotInfo is not None else None)
        elif isinstance(dev, d.VirtualCdrom):
            out.append(
                {
                    "type": "VirtualCdrom",
                    "controller_key": dev.controllerKey,
                    "unit": dev.unitNumber,
                    "backing": _backing(dev.backing),
                }
            )
        elif isinstance(dev, d.VirtualSerialPort):
            out.append(
                {
                    "type": "VirtualSerialPort",
                    "yield_on_poll": bool(dev.yieldOnPoll),
                    "backing": _backing(dev.backing),
                }
            )
        elif isinstance(dev, d.VirtualUSBXHCIController):
            out.append({"type": "VirtualUSBXHCIController"})
        elif isinstance(dev, d.VirtualUSBController):
            out.append({"type": "VirtualUSBController", "ehci_enabled": bool(dev.ehciEnabled)})
    extra = {o.key: str(o.value) for o in source.get("config.extraConfig") or [] if o.key.lower() in _CARRIED}
    numbers = {name: int(source[prop]) for prop, name in _PROPS.items() if source.get(prop)}
    secure = str(source.get(_SECURE_BOOT, "")).lower() == "true"
    return {"devices": out, "nic_pci_slots": slots, "extra_config": extra, "secure_boot": secure, **numbers}


def devices(config: dict[str, Any]) -> list[Any]:
    """The recorded CD-ROMs, serial ports and USB controllers of ``vm_config`` as device objects."""
    d = vim().vm.device
    out: list[Any] = []
    for i, item in enumerate((config.get("carried") or {}).get("devices") or []):
        if item.get("type") not in _TYPES:
            continue  # recorded by a newer ceso: not carried here
        cls = getattr(d, item["type"])
        try:
            dev = cls(key=-(900 + i))
            if item.get("backing") is not None:
                fields = dict(item["backing"])
                dev.backing = getattr(cls, fields.pop("type"))(**fields)
            if item["type"] == "VirtualCdrom":
                dev.controllerKey, dev.unitNumber = item["controller_key"], item["unit"]
            elif item["type"] == "VirtualSerialPort":
                dev.yieldOnPoll = bool(item.get("yield_on_poll"))
            elif item["type"] == "VirtualUSBController":
                dev.ehciEnabled = bool(item.get("ehci_enabled"))
        except (AttributeError, KeyError, TypeError) as exc:
            raise OperationError(
                f"manifest: carried device {i} ({item['type']}) is not valid: {exc}", code="manifest_invalid"
            ) from exc
        out.append(dev)
    return out


def nic_slots(config: dict[str, Any]) -> list[int | None]:
    """Each recorded NIC's PCI slot, in the order of ``vm_config["nics"]`` (None where unknown)."""
    slots = list((config.get("carried") or {}).get("nic_pci_slots") or [])
    nics = len(config.get("nics") or [])
    return slots if len(slots) == nics else [None] * nics


def props(config: dict[str, Any]) -> dict[str, Any]:
    """The recorded extraConfig keys, cores per socket, reservations and Secure Boot, as source properties."""
    carried = config.get("carried") or {}
    out: dict[str, Any] = {
        prop: carried[name] for prop, name in _PROPS.items() if carried.get(name) is not None
    }
    if carried.get("secure_boot"):
        out[_SECURE_BOOT] = "true"
    out["config.extraConfig"] = [
        vim().option.OptionValue(key=k, value=v)
        for k, v in (carried.get("extra_config") or {}).items()
        if k.lower() in _CARRIED
    ]
    return out
