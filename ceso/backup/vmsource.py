"""What a backup of a VM reads: its files on the datastore and a summary of its hardware.

The summary (CPU, memory, firmware, controllers, disks, NICs, and the hardware
a clone carries: :mod:`ceso.backup.hardware`) is what a restore needs to build
a new VM without the original. Disks are read as their chain of
descriptors and data extents as it stands before ceso's own snapshot, so a VM
with snapshots of its own is backed up in the state it runs in, and nothing of
the user's snapshots is changed.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from ceso.backends.paths import split_datastore_path
from ceso.backends.vmomi import vim
from ceso.backup import hardware
from ceso.backup.datastore_files import DatastoreFiles
from ceso.errors import InvalidInputError, NotFoundError

__all__ = ["BACKUP_PROPERTIES", "BackupPlan", "SourceFile", "plan_backup"]

BACKUP_PROPERTIES = [
    "config.uuid",
    "config.guestId",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.firmware",
    "config.version",
    "config.hardware.device",
    "summary.config.vmPathName",
    "runtime.powerState",
    "guest.toolsRunningStatus",
]
_EXTENT = re.compile(r'^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]+)"', re.MULTILINE)
_PARENT = re.compile(r'^\s*parentFileNameHint\s*=\s*"([^"]+)"', re.MULTILINE)
_VOLUMES = "/vmfs/volumes/"
MAX_DESCRIPTOR = 64 * 1024


@dataclass(frozen=True)
class SourceFile:
    """One datastore file to back up; ``name`` is unique within the set."""

    name: str
    role: str  # vmx | nvram | descriptor | extent
    datastore: str
    path: str
    disk: int | None = None
    link: int | None = None

    @property
    def source(self) -> str:
        return f"[{self.datastore}] {self.path}"


@dataclass
class BackupPlan:
    vm_config: dict[str, Any]
    files: list[SourceFile] = field(default_factory=list)
    power_state: str = "poweredOff"
    tools_running: bool = False


def _kind(dev: Any) -> str:
    return type(dev).__name__.rsplit(".", 1)[-1]


def _refuse_unsupported(name: str, disk: Any) -> None:
    backing = disk.backing
    label = getattr(getattr(disk, "deviceInfo", None), "label", None) or f"disk {disk.key}"
    if isinstance(backing, vim().vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo):
        raise InvalidInputError(
            f"VM {name!r}: {label} is a raw device mapping; its data lives on a LUN outside the datastore "
            "and cannot be backed up by ceso",
            code="backup_unsupported",
        )
    mode = str(getattr(backing, "diskMode", "") or "")
    if mode.startswith("independent"):
        raise InvalidInputError(
            f"VM {name!r}: {label} is {mode}; independent disks are not captured by snapshots, so a "
            "consistent backup is impossible (make it dependent, or back up with the VM powered off after "
            "changing its mode)",
            code="backup_unsupported",
        )


def _descriptor(http: DatastoreFiles, datastore: str, descriptor: str) -> str:
    """A descriptor's text, read to its end; empty if it is too large to be one."""
    remote = http.open_read(datastore, descriptor)
    try:
        if remote.size > MAX_DESCRIPTOR:
            return ""
        data, buf = bytearray(), bytearray(MAX_DESCRIPTOR)
        while n := remote.readinto(buf):
            data += buf[:n]
    finally:
        remote.close()
    return data.decode("utf-8", "replace")


def _extents(text: str, descriptor: str) -> list[str]:
    """Data files named by a descriptor; ``<name>-flat.vmdk`` when it names none (the simulator's empty ones)."""
    directory = posixpath.dirname(descriptor)
    found = [posixpath.join(directory, m) for m in _EXTENT.findall(text)]
    return found or [descriptor[: -len(".vmdk")] + "-flat.vmdk"]


def _parent(text: str, datastore: str, descriptor: str) -> str | None:
    """The datastore path of a delta descriptor's parent (``parentFileNameHint``), or None for a base."""
    hint = next(iter(_PARENT.findall(text)), None)
    if hint is None:
        return None
    if hint.startswith(_VOLUMES):
        ds, _, rest = hint[len(_VOLUMES) :].partition("/")
        return f"[{ds}] {rest}"
    return f"[{datastore}] {posixpath.join(posixpath.dirname(descriptor), hint)}"


def _chain(disk: Any) -> list[str]:
    """Descriptor paths of a disk from base to top (the top is the running state)."""
    links: list[str] = []
    backing = disk.backing
    while backing is not None:
        links.append(str(backing.fileName))
        backing = getattr(backing, "parent", None)
    return list(reversed(links))


def _summary(props: dict[str, Any], source: dict[str, Any], vm_name: str) -> dict[str, Any]:
    devices = props.get("config.hardware.device") or []
    v = vim().vm.device
    controllers, disks, nics = [], [], []
    for dev in devices:
        if isinstance(dev, v.VirtualSCSIController | v.VirtualSATAController | v.VirtualNVMEController):
            controllers.append(
                {
                    "key": dev.key,
                    "type": _kind(dev),
                    "bus": dev.busNumber,
                    "shared_bus": getattr(dev, "sharedBus", None),
                }
            )
        elif isinstance(dev, v.VirtualDisk):
            disks.append(
                {
                    "key": dev.key,
                    "controller_key": dev.controllerKey,
                    "unit": dev.unitNumber,
                    "capacity_kb": int(dev.capacityInKB or 0),
                    "file": str(dev.backing.fileName),
                    "thin": bool(getattr(dev.backing, "thinProvisioned", False)),
                }
            )
        elif isinstance(dev, v.VirtualEthernetCard):
            nics.append(
                {
                    "type": _kind(dev),
                    "network": getattr(dev.backing, "deviceName", None),
                    "mac": dev.macAddress,
                }
            )
    return {
        "name": vm_name,
        "uuid": props.get("config.uuid"),
        "guest_id": props.get("config.guestId"),
        "num_cpu": props.get("config.hardware.numCPU"),
        "memory_mb": props.get("config.hardware.memoryMB"),
        "firmware": props.get("config.firmware"),
        "version": props.get("config.version"),
        "vmx_path": props.get("summary.config.vmPathName"),
        "controllers": controllers,
        "disks": disks,
        "nics": nics,
        "carried": hardware.record(source),
    }


def plan_backup(
    http: DatastoreFiles, vm_name: str, props: dict[str, Any], source: dict[str, Any]
) -> BackupPlan:
    """The files and hardware summary of a VM (``props``: :data:`BACKUP_PROPERTIES`; ``source``: the
    VM read as a clone reads its source, ``VmBackend.source_props``).

    Raises InvalidInputError (code ``backup_unsupported``) for raw-mapped or
    independent disks, before anything is changed.
    """
    devices = props.get("config.hardware.device") or []
    disks = [d for d in devices if isinstance(d, vim().vm.device.VirtualDisk)]
    for disk in disks:
        _refuse_unsupported(vm_name, disk)
    vmx_ds, vmx_path = split_datastore_path(str(props["summary.config.vmPathName"]))
    files: list[SourceFile] = [SourceFile(posixpath.basename(vmx_path), "vmx", vmx_ds, vmx_path)]
    nvram = vmx_path[: -len(".vmx")] + ".nvram" if vmx_path.endswith(".vmx") else None
    if nvram is not None:
        try:
            http.size(vmx_ds, nvram)
            files.append(SourceFile(posixpath.basename(nvram), "nvram", vmx_ds, nvram))
        except NotFoundError:
            pass  # a VM that never booted has no NVRAM yet
    taken = {f.name for f in files}
    for index, disk in enumerate(disks):
        chain = _chain(disk)
        texts = {link: _descriptor(http, *split_datastore_path(link)) for link in chain}
        # A route that knows only the top of the chain (the SSH route reads the .vmx): the descriptors
        # name their parents, down to the base.
        while len(texts) < 64 and (parent := _parent(texts[chain[0]], *split_datastore_path(chain[0]))):
            chain.insert(0, parent)
            texts[parent] = _descriptor(http, *split_datastore_path(parent))
        for link, descriptor in enumerate(chain):
            ds, path = split_datastore_path(descriptor)
            extents = _extents(texts[descriptor], path)
            for role, file_path in [("descriptor", path), *(("extent", e) for e in extents)]:
                name = posixpath.basename(file_path)
                if name in taken:
                    name = f"disk{index}-{name}"
                taken.add(name)
                files.append(SourceFile(name, role, ds, file_path, disk=index, link=link))
    return BackupPlan(
        vm_config=_summary(props, source, vm_name),
        files=files,
        power_state=str(props.get("runtime.powerState", "poweredOff")),
        tools_running=props.get("guest.toolsRunningStatus") == "guestToolsRunning",
    )
