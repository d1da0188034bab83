"""Changed Block Tracking for backups: which areas of each disk a backup point reads.

A point is read through CBT only when the host can be trusted to say what is on the disk:

* :func:`tracking_ready` switches ``changeTrackingEnabled`` on when it is off and the VM has no
  snapshot (a host refuses the switch otherwise); it takes effect at the backup's snapshot.
* :func:`query_areas` asks ``QueryChangedDiskAreas`` of the backup snapshot, looping over the
  ``DiskChangeInfo`` answers until the disk's capacity is covered: ``"*"`` gives the allocated
  areas (a full reads only those), a parent's changeId the areas written since (an incremental).
* A host that refuses a changeId (:class:`ChangeIdRefusedError`: CBT was reset by a revert, a resize
  or switching it off) makes the point a full, with the reason in the job's result.

Everything here talks to the host through the API route's backend
(:class:`ceso.backends.api.ApiVmBackend`); the bytes of the areas are read by
:mod:`ceso.backup.ranges`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ceso.backends.faults import fault_name
from ceso.backends.vmomi import vim
from ceso.errors import CesoError

if TYPE_CHECKING:
    from ceso.backends.api import ApiVmBackend

__all__ = [
    "ChangeIdRefusedError",
    "DiskPoint",
    "TrackingUnavailableError",
    "disk_points",
    "query_areas",
    "tracking_ready",
]

# Faults a host answers for a changeId it cannot serve (never issued, or reset).
_REFUSED = {"FileFault", "InvalidArgument", "NotFound"}


class ChangeIdRefusedError(Exception):
    """The host refused a changeId: changes since it are unknown, so the point must be a full."""


class TrackingUnavailableError(Exception):
    """The host cannot track changes for this VM (license, version, device); read disks whole."""


@dataclass(frozen=True)
class DiskPoint:
    """One disk at the backup snapshot: its device key, capacity and the changeId it carries."""

    index: int
    key: int
    capacity: int
    change_id: str


def tracking_ready(ops: ApiVmBackend, vm: Any, *, has_snapshots: bool) -> str | None:
    """Make sure CBT is enabled on ``vm``; return why it cannot be, or None when it is.

    Switching it on is refused by a host while the VM has snapshots, so then this says so rather
    than trying; a host without CBT (free license) refuses the reconfigure.
    """
    if ops.change_tracking(vm):
        return None
    if has_snapshots:
        return "change tracking is off and cannot be switched on while the VM has snapshots"
    try:
        ops.set_change_tracking(vm, True)
    except CesoError as exc:
        return f"the host refused to switch change tracking on: {exc.message}"
    return None


def disk_points(ops: ApiVmBackend, snapshot: Any) -> list[DiskPoint]:
    """The disks of the backup snapshot with their changeIds; TrackingUnavailableError if any has none."""
    points = []
    disks = [d for d in ops.snapshot_devices(snapshot) if isinstance(d, vim().vm.device.VirtualDisk)]
    for index, disk in enumerate(disks):
        change_id = str(getattr(disk.backing, "changeId", "") or "")
        if not change_id:
            raise TrackingUnavailableError(f"disk {disk.key} carries no changeId at the backup snapshot")
        capacity = int(getattr(disk, "capacityInBytes", 0) or 0) or int(disk.capacityInKB or 0) * 1024
        points.append(DiskPoint(index, int(disk.key), capacity, change_id))
    return points


def query_areas(
    ops: ApiVmBackend, vm: Any, snapshot: Any, disk: DiskPoint, since: str
) -> list[tuple[int, int]]:
    """Every area of ``disk`` the host reports since ``since`` ("*" = allocated), merged and sorted.

    Raises ChangeIdRefusedError when the host refuses ``since``, TrackingUnavailableError when it has no
    CBT at all, and CesoError for an answer that does not make progress or leaves the disk.
    """
    areas: list[tuple[int, int]] = []
    offset = 0
    while offset < disk.capacity:
        try:
            length, found = ops.changed_disk_areas(vm, snapshot, disk.key, offset, since)
        except CesoError as exc:
            name = fault_name(exc.__cause__) if exc.__cause__ is not None else ""
            if name in _REFUSED:
                raise ChangeIdRefusedError(
                    f"the host refused changeId {since!r} of disk {disk.key}: {exc.message}"
                ) from exc
            if name in ("RestrictedVersion", "NotSupported", "NotImplemented", "MethodNotFound"):
                raise TrackingUnavailableError(
                    f"the host cannot report changed areas: {exc.message}"
                ) from exc
            raise
        if length <= 0:
            raise CesoError(f"the host's changed areas of disk {disk.key} stopped at byte {offset}")
        end = min(offset + length, disk.capacity)
        for start, size in found:
            if size <= 0 or start < offset or start + size > end:
                raise CesoError(
                    f"the host reported area {start}+{size} of disk {disk.key} outside {offset}..{end}"
                )
            if areas and areas[-1][0] + areas[-1][1] == start:
                areas[-1] = (areas[-1][0], areas[-1][1] + size)
            elif areas and areas[-1][0] + areas[-1][1] > start:
                raise CesoError(f"the host reported overlapping areas of disk {disk.key} at byte {start}")
            else:
                areas.append((start, size))
        offset = end
    return areas
