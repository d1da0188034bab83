"""Inventory reads: VMs, the host, its datastores and networks.

Each read is one property-collector pass asking for exactly the properties it
returns. Results are plain dataclasses whose
``to_dict`` is the documented ``--json`` shape.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any

from ceso.backends.paths import one_named
from ceso.backends.vmomi import vim
from ceso.esxi.client import EsxiClient
from ceso.esxi.propxml import VIM, XSI_TYPE, iter_children, retrieve_xml, text_of
from ceso.esxi.vmscan import vms_named

__all__ = [
    "DiskInfo",
    "NicInfo",
    "VmSummary",
    "find_vm",
    "host_facts",
    "list_vms",
    "vm_summary",
    "vm_summary_xml",
]

#: Properties read for each VM by ``vm list`` and ``vm info``.
VM_PROPERTIES = [
    "name",
    "config.uuid",
    "config.template",
    "config.guestId",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "runtime.powerState",
    "guest.net",
    "snapshot",
    "summary.config.vmPathName",
]


@dataclass(frozen=True)
class DiskInfo:
    path: str
    capacity_bytes: int
    thin: bool


@dataclass(frozen=True)
class NicInfo:
    mac: str
    network: str | None


@dataclass(frozen=True)
class VmSummary:
    """One VM as ``vm list --json`` and ``vm info --json`` show it."""

    name: str
    host: str
    uuid: str | None
    power_state: str
    cpus: int | None
    memory_mb: int | None
    guest_id: str | None
    template: bool
    vmx_path: str | None
    disks: list[DiskInfo] = field(default_factory=list)
    nics: list[NicInfo] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)
    snapshots: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count_snapshots(trees: Any) -> int:
    return sum(1 + _count_snapshots(t.childSnapshotList) for t in trees or [])


def vm_summary(host: str, row: dict[str, Any]) -> VmSummary:
    """Build a VmSummary from one property-collector row of VM_PROPERTIES."""
    vim_ = vim()
    disks: list[DiskInfo] = []
    nics: list[NicInfo] = []
    devices: list[Any] = row.get("config.hardware.device") or []
    for dev in devices:
        if isinstance(dev, vim_.vm.device.VirtualDisk):
            backing = dev.backing
            disks.append(
                DiskInfo(
                    path=getattr(backing, "fileName", "") or "",
                    capacity_bytes=int(dev.capacityInBytes or (dev.capacityInKB or 0) * 1024),
                    thin=bool(getattr(backing, "thinProvisioned", False)),
                )
            )
        elif isinstance(dev, vim_.vm.device.VirtualEthernetCard):
            backing = dev.backing
            network = getattr(backing, "deviceName", None)
            if network is None and getattr(backing, "port", None) is not None:
                network = backing.port.portgroupKey
            nics.append(NicInfo(mac=dev.macAddress or "", network=network))
    ips = [ip for nic in row.get("guest.net") or [] for ip in (nic.ipAddress or [])]
    snap = row.get("snapshot")
    return VmSummary(
        name=row["name"],
        host=host,
        uuid=row.get("config.uuid"),
        power_state=str(row.get("runtime.powerState", "unknown")),
        cpus=row.get("config.hardware.numCPU"),
        memory_mb=row.get("config.hardware.memoryMB"),
        guest_id=row.get("config.guestId"),
        template=bool(row.get("config.template", False)),
        vmx_path=row.get("summary.config.vmPathName"),
        disks=disks,
        nics=nics,
        ip_addresses=ips,
        snapshots=_count_snapshots(snap.rootSnapshotList) if snap is not None else 0,
    )


def list_vms(client: EsxiClient) -> list[VmSummary]:
    """Every VM on the host, sorted by name, in one property-collector pass.

    The reply is read as XML (:mod:`ceso.esxi.propxml`), not as pyVmomi
    objects: on a full host the device lists are most of the reply, and
    building objects for them would be most of the time. The result equals
    :func:`vm_summary` of the same rows.
    """
    summaries = retrieve_xml(
        client, "VirtualMachine", VM_PROPERTIES, lambda obj: vm_summary_xml(client.name, obj.props)
    )
    return sorted((s for s in summaries if s is not None), key=lambda v: v.name)


#: ``xsi:type`` of the VirtualEthernetCard subclasses (a device with a MAC address counts too).
_NIC_TYPES = frozenset(
    {
        "VirtualE1000",
        "VirtualE1000e",
        "VirtualPCNet32",
        "VirtualVmxnet",
        "VirtualVmxnet2",
        "VirtualVmxnet3",
        "VirtualVmxnet3Vrdma",
        "VirtualSriovEthernetCard",
    }
)


def _xsi_type(element: ET.Element) -> str:
    return (element.get(XSI_TYPE) or "").rpartition(":")[2]


def _int(text: str | None) -> int | None:
    return int(text) if text is not None else None


def _count_snapshots_xml(element: ET.Element | None, child: str) -> int:
    return sum(1 + _count_snapshots_xml(tree, "childSnapshotList") for tree in iter_children(element, child))


def _device_summaries(devices: ET.Element | None) -> tuple[list[DiskInfo], list[NicInfo]]:
    disks: list[DiskInfo] = []
    nics: list[NicInfo] = []
    for dev in iter_children(devices, "VirtualDevice"):
        kind = _xsi_type(dev)
        if kind == "VirtualDisk":
            backing = dev.find(VIM + "backing")
            in_bytes = text_of(dev, "capacityInBytes")
            disks.append(
                DiskInfo(
                    path=text_of(backing, "fileName", "") or "",
                    capacity_bytes=int(in_bytes)
                    if in_bytes
                    else int(text_of(dev, "capacityInKB", "0") or 0) * 1024,
                    thin=text_of(backing, "thinProvisioned") == "true",
                )
            )
        elif kind in _NIC_TYPES or dev.find(VIM + "macAddress") is not None:
            backing = dev.find(VIM + "backing")
            network = text_of(backing, "deviceName") or text_of(backing, "port/portgroupKey")
            nics.append(NicInfo(mac=text_of(dev, "macAddress", "") or "", network=network))
    return disks, nics


def vm_summary_xml(host: str, props: dict[str, ET.Element]) -> VmSummary | None:
    """Build a VmSummary from the ``val`` elements of one VM in a VM_PROPERTIES reply (None: no name)."""
    name = props.get("name")
    if name is None:
        return None

    def text(prop: str) -> str | None:
        val = props.get(prop)
        return val.text if val is not None else None

    disks, nics = _device_summaries(props.get("config.hardware.device"))
    ips = [
        ip.text or ""
        for nic in iter_children(props.get("guest.net"), "GuestNicInfo")
        for ip in iter_children(nic, "ipAddress")
    ]
    return VmSummary(
        name=name.text or "",
        host=host,
        uuid=text("config.uuid"),
        power_state=text("runtime.powerState") or "unknown",
        cpus=_int(text("config.hardware.numCPU")),
        memory_mb=_int(text("config.hardware.memoryMB")),
        guest_id=text("config.guestId"),
        template=text("config.template") == "true",
        vmx_path=text("summary.config.vmPathName"),
        disks=disks,
        nics=nics,
        ip_addresses=ips,
        snapshots=_count_snapshots_xml(props.get("snapshot"), "rootSnapshotList"),
    )


def find_vm(client: EsxiClient, name: str) -> Any:
    """The VirtualMachine object named ``name`` (one property-collector request).

    Raises NotFoundError if none, ConflictError if the host has several
    (ESXi allows duplicate display names; ceso refuses to guess).
    """
    return one_named(vms_named(client, name), name, client.name)


def vm_info(client: EsxiClient, name: str) -> VmSummary:
    """The summary of one VM, by name (NotFoundError, ConflictError)."""
    row = client.retrieve_object(find_vm(client, name), VM_PROPERTIES)
    return vm_summary(client.name, row)


def host_facts(client: EsxiClient) -> dict[str, Any]:
    """What ``host check`` reports: product, API version, datastores, networks, VM count."""
    about = client.content.about
    datastores = [
        {
            "name": r.get("summary.name"),
            "type": r.get("summary.type"),
            "capacity_bytes": r.get("summary.capacity"),
            "free_bytes": r.get("summary.freeSpace"),
            "url": r.get("summary.url"),
        }
        for r in client.retrieve(
            "Datastore",
            ["summary.name", "summary.type", "summary.capacity", "summary.freeSpace", "summary.url"],
        )
    ]
    networks = sorted(r["name"] for r in client.retrieve("Network", ["name"]) if "name" in r)
    vm_count = len(client.retrieve("VirtualMachine", ["name"]))
    return {
        "product": about.fullName,
        "version": about.version,
        "build": about.build,
        "api_version": about.apiVersion,
        "api_type": about.apiType,
        "datastores": sorted(datastores, key=lambda d: str(d["name"])),
        "networks": networks,
        "vm_count": vm_count,
        "host_time": client.current_time().isoformat(),
    }
