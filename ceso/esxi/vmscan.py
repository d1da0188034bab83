"""Reads over every VM of a host, one request each: the VMs of a name, and the MAC addresses in use.

Both walk the inventory from the root folder (:mod:`ceso.esxi.traversal`)
rather than through a container view, so each costs one round trip instead of
three, and both read the reply as XML (:mod:`ceso.esxi.propxml`) rather than
through pyVmomi's deserializer. The MAC read needs every VM's device list, the
largest property a VM has: its reply is scanned for the MACs without being
parsed (:func:`ceso.esxi.propxml.scan_walk_xml`), so it costs about the host's
own reply time, where building pyVmomi objects for the same reply costs far more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ceso.backends.vmomi import vim
from ceso.esxi.propxml import ObjectXml, retrieve_walk_xml, scan_walk_xml
from ceso.esxi.traversal import VM_WALK

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = ["macs_in_use", "vms_named"]


def _moid_and_name(obj: ObjectXml) -> tuple[str, str | None]:
    val = obj.props.get("name")
    return obj.moid, (val.text if val is not None else None)


def vms_named(client: EsxiClient, name: str) -> list[Any]:
    """The VirtualMachine objects whose name is ``name`` (ESXi allows several), in one request."""
    found = retrieve_walk_xml(client, VM_WALK, "VirtualMachine", ["name"], _moid_and_name)
    stub = client.content.propertyCollector._stub  # the session's: objects found are bound to it
    return [vim().VirtualMachine(moid, stub) for moid, vm_name in found if vm_name == name]


def macs_in_use(client: EsxiClient) -> set[str]:
    """Every NIC MAC address (lower case) of every VM on the host, manual or generated, in one request.

    In a device list only network adapters have a ``macAddress``.
    """
    texts = scan_walk_xml(client, VM_WALK, "VirtualMachine", ["config.hardware.device"], "macAddress")
    return {mac.strip().lower() for mac in texts if mac.strip()}
