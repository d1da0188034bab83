"""Planning ``vm reconfigure``: one ConfigSpec holding every requested change, checked against the VM.

The same planner runs in the request builder (so a bad request is refused
before a job exists) and in the worker, on properties read again under the
VM lock, whose spec is then sent in a single ReconfigVM_Task.

Rules: CPUs and memory change on a powered-on VM only with hot-add enabled
(``config.cpuHotAddEnabled`` / ``memoryHotAddEnabled``; fewer CPUs need
hot-remove, memory never shrinks while on); a disk only grows, never while
the VM has snapshots (ESXi cannot extend a disk under a delta); a NIC is
moved to another port group of the host; an ISO goes into the first CD-ROM,
or into a new one on the first IDE or SATA controller with a free slot
(IDE cannot take one while the VM runs). A request equal to the current
state is left out of the spec and reported as unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ceso.backends.vmomi import vim
from ceso.errors import ConflictError, InvalidInputError, NotFoundError
from ceso.vm.sizes import format_bytes

__all__ = [
    "HARDWARE_PROPERTIES",
    "DiskGrow",
    "ReconfigureChanges",
    "ReconfigurePlan",
    "find_disk",
    "plan_reconfigure",
]

HARDWARE_PROPERTIES = [
    "config.hardware.device",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.hardware.memoryMB",
    "config.cpuHotAddEnabled",
    "config.cpuHotRemoveEnabled",
    "config.memoryHotAddEnabled",
    "runtime.powerState",
    "snapshot",
]
_HARD_DISK = re.compile(r"^hard disk (\d+)$", re.IGNORECASE)
_IDE_UNITS, _SATA_UNITS = 2, 30


@dataclass(frozen=True)
class DiskGrow:
    disk: str  # 1-based index or label ("Hard disk 1")
    size_bytes: int


@dataclass(frozen=True)
class ReconfigureChanges:
    """What to change, validated in form (sizes parsed, ISO path checked); None leaves a setting alone."""

    cpus: int | None = None
    memory_mb: int | None = None
    disk_grow: tuple[DiskGrow, ...] = ()
    network: str | None = None
    nic: int = 1
    iso: str | None = None
    eject_iso: bool = False

    def to_params(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "disk_grow": [{"disk": g.disk, "size_bytes": g.size_bytes} for g in self.disk_grow],
            "network": self.network,
            "nic": self.nic,
            "iso": self.iso,
            "eject_iso": self.eject_iso,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ReconfigureChanges:
        return cls(
            cpus=params.get("cpus"),
            memory_mb=params.get("memory_mb"),
            disk_grow=tuple(DiskGrow(g["disk"], int(g["size_bytes"])) for g in params.get("disk_grow") or []),
            network=params.get("network"),
            nic=int(params.get("nic", 1)),
            iso=params.get("iso"),
            eject_iso=bool(params.get("eject_iso", False)),
        )


@dataclass
class ReconfigurePlan:
    """The spec to send (None when nothing differs) and what it changes, for the job's result."""

    spec: Any
    changes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _label(dev: Any) -> str:
    info = getattr(dev, "deviceInfo", None)
    return str(getattr(info, "label", "") or "")


def find_disk(disks: list[Any], selector: str) -> tuple[int, Any]:
    """The disk ``selector`` names: a 1-based index, or a label such as ``Hard disk 1``.

    A host that labels its disks otherwise (the simulator says ``disk-202-0``)
    still takes ``Hard disk N`` as the Nth disk. InvalidInputError if none.
    """
    sel = selector.strip()
    if sel.isdigit():
        index = int(sel)
    else:
        for i, dev in enumerate(disks, 1):
            if _label(dev).lower() == sel.lower():
                return i, dev
        match = _HARD_DISK.match(sel)
        if match is None or any(_HARD_DISK.match(_label(d)) for d in disks):
            have = ", ".join(_label(d) or str(i) for i, d in enumerate(disks, 1)) or "none"
            raise InvalidInputError(
                f"no disk {selector!r} on this VM (disks: {have}); use its number or label"
            )
        index = int(match.group(1))
    if not 1 <= index <= len(disks):
        raise InvalidInputError(f"disk {selector!r}: the VM has {len(disks)} disk(s)")
    return index, disks[index - 1]


def _of(devices: list[Any], kind: str) -> list[Any]:
    cls = getattr(vim().vm.device, kind)
    return [d for d in devices if isinstance(d, cls)]


class _Planner:
    def __init__(self, props: dict[str, Any], *, host: str, name: str) -> None:
        self.props = props
        self.devices: list[Any] = list(props.get("config.hardware.device") or [])
        self.running = props.get("runtime.powerState") == "poweredOn"
        self.where = f"VM {name!r} on host {host}"
        self.plan = ReconfigurePlan(spec=vim().vm.ConfigSpec())
        self.device_changes: list[Any] = []

    def edit(self, device: Any, operation: str = "edit") -> None:
        self.device_changes.append(vim().vm.device.VirtualDeviceSpec(operation=operation, device=device))

    def cpus(self, wanted: int) -> None:
        current = int(self.props.get("config.hardware.numCPU") or 0)
        if wanted == current:
            self.plan.unchanged.append(f"cpus {current}")
            return
        cores = int(self.props.get("config.hardware.numCoresPerSocket") or 1)
        if wanted % cores:
            raise InvalidInputError(f"--cpus {wanted} is not a multiple of the VM's {cores} cores per socket")
        if self.running:
            hot, word = (
                ("config.cpuHotAddEnabled", "hot-add")
                if wanted > current
                else ("config.cpuHotRemoveEnabled", "hot-remove")
            )
            if not self.props.get(hot):
                raise ConflictError(
                    f"{self.where} is powered on and CPU {word} is disabled: power it off to change --cpus"
                )
        self.plan.spec.numCPUs = wanted
        self.plan.changes.append(f"cpus {current} -> {wanted}")

    def memory(self, wanted: int) -> None:
        current = int(self.props.get("config.hardware.memoryMB") or 0)
        if wanted == current:
            self.plan.unchanged.append(f"memory {current} MiB")
            return
        if self.running and wanted < current:
            raise ConflictError(f"{self.where} is powered on: memory cannot shrink while it runs")
        if self.running and not self.props.get("config.memoryHotAddEnabled"):
            raise ConflictError(
                f"{self.where} is powered on and memory hot-add is disabled: power it off to change --memory"
            )
        self.plan.spec.memoryMB = wanted
        self.plan.changes.append(f"memory {current} -> {wanted} MiB")

    def disks(self, grows: tuple[DiskGrow, ...]) -> None:
        disks = _of(self.devices, "VirtualDisk")
        seen: set[int] = set()
        for grow in grows:
            index, disk = find_disk(disks, grow.disk)
            if index in seen:
                raise InvalidInputError(f"disk {index} is named twice in --disk-grow")
            seen.add(index)
            current = int(disk.capacityInBytes or disk.capacityInKB * 1024)
            size = format_bytes(grow.size_bytes)
            if grow.size_bytes < current:
                raise InvalidInputError(
                    f"--disk-grow {grow.disk} {size} is smaller than the disk's {format_bytes(current)}; "
                    "disks only grow"
                )
            if grow.size_bytes == current:
                self.plan.unchanged.append(f"disk {index} {size}")
                continue
            snapshot = self.props.get("snapshot")
            if snapshot is not None and snapshot.rootSnapshotList:
                raise ConflictError(f"{self.where} has snapshots: a disk cannot grow until they are deleted")
            disk.capacityInKB = grow.size_bytes // 1024
            disk.capacityInBytes = grow.size_bytes
            self.edit(disk)
            self.plan.changes.append(f"disk {index} {format_bytes(current)} -> {size}")

    def network(self, network: str, nic_number: int, networks: Collection[str]) -> None:
        nics = _of(self.devices, "VirtualEthernetCard")
        if not 1 <= nic_number <= len(nics):
            raise InvalidInputError(f"--nic {nic_number}: the VM has {len(nics)} NIC(s)")
        if network not in networks:
            raise NotFoundError(f"no network {network!r} on this host (have: {', '.join(sorted(networks))})")
        nic = nics[nic_number - 1]
        current = getattr(nic.backing, "deviceName", None)
        if current == network:
            self.plan.unchanged.append(f"nic {nic_number} on {network}")
            return
        nic.backing = vim().vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network)
        self.edit(nic)
        self.plan.changes.append(f"nic {nic_number} {current} -> {network}")

    def attach_iso(self, iso: str) -> None:
        v = vim()
        connect = v.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=True, allowGuestControl=True
        )
        backing = v.vm.device.VirtualCdrom.IsoBackingInfo(fileName=iso)
        cdroms = _of(self.devices, "VirtualCdrom")
        if cdroms:
            cd = cdroms[0]
            if getattr(cd.backing, "fileName", None) == iso and cd.connectable and cd.connectable.connected:
                self.plan.unchanged.append(f"iso {iso}")
                return
            cd.backing, cd.connectable = backing, connect
            self.edit(cd)
            self.plan.changes.append(f"cd-rom 1 -> {iso}")
            return
        controller, unit, bus = self._free_cdrom_slot()
        if self.running and bus == "IDE":
            raise ConflictError(
                f"{self.where} is powered on: a CD-ROM cannot be added to an IDE controller while it runs"
            )
        self.edit(
            v.vm.device.VirtualCdrom(
                key=-1, controllerKey=controller.key, unitNumber=unit, backing=backing, connectable=connect
            ),
            "add",
        )
        self.plan.changes.append(f"new cd-rom on {bus} {controller.busNumber}:{unit} -> {iso}")

    def _free_cdrom_slot(self) -> tuple[Any, int, str]:
        used: dict[int, set[int]] = {}
        for dev in self.devices:
            if getattr(dev, "controllerKey", None) is not None and dev.unitNumber is not None:
                used.setdefault(dev.controllerKey, set()).add(dev.unitNumber)
        for kind, bus, units in (
            ("VirtualIDEController", "IDE", _IDE_UNITS),
            ("VirtualSATAController", "SATA", _SATA_UNITS),
        ):
            for ctrl in sorted(_of(self.devices, kind), key=lambda c: c.busNumber):
                free = [u for u in range(units) if u not in used.get(ctrl.key, set())]
                if free:
                    return ctrl, free[0], bus
        raise ConflictError(f"{self.where} has no free IDE or SATA slot for a CD-ROM")

    def eject_iso(self) -> None:
        v = vim()
        loaded = [
            cd
            for cd in _of(self.devices, "VirtualCdrom")
            if isinstance(cd.backing, v.vm.device.VirtualCdrom.IsoBackingInfo)
        ]
        if not loaded:
            self.plan.unchanged.append("no ISO attached")
            return
        for cd in loaded:
            # An empty client-device backing is what "no media" looks like to ESXi.
            cd.backing = v.vm.device.VirtualCdrom.RemotePassthroughBackingInfo(deviceName="", exclusive=False)
            cd.connectable = v.vm.device.VirtualDevice.ConnectInfo(
                startConnected=False, connected=False, allowGuestControl=True
            )
            self.edit(cd)
        self.plan.changes.append(f"ejected {len(loaded)} ISO(s)")


def plan_reconfigure(
    props: dict[str, Any], changes: ReconfigureChanges, *, networks: Collection[str], host: str, name: str
) -> ReconfigurePlan:
    """The ConfigSpec for ``changes`` applied to a VM with ``props`` (HARDWARE_PROPERTIES).

    ``networks`` are the host's network names (only read with ``changes.network``).
    Raises InvalidInputError (shrink, unknown disk or NIC), NotFoundError
    (network), ConflictError (hot-add disabled, snapshots, no CD-ROM slot).
    Mutates the device objects in ``props``; read them again to plan again.
    """
    planner = _Planner(props, host=host, name=name)
    if changes.cpus is not None:
        planner.cpus(changes.cpus)
    if changes.memory_mb is not None:
        planner.memory(changes.memory_mb)
    planner.disks(changes.disk_grow)
    if changes.network is not None:
        planner.network(changes.network, changes.nic, networks)
    if changes.iso is not None:
        planner.attach_iso(changes.iso)
    if changes.eject_iso:
        planner.eject_iso()
    plan = planner.plan
    if planner.device_changes:
        plan.spec.deviceChange = planner.device_changes
    if not plan.changes:
        plan.spec = None
    return plan
