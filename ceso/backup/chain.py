"""Chains of backup points: which point an incremental builds on, or why it must be a full.

An incremental stores only the areas of each disk changed since its parent's changeIds, so a
restore needs the full and every incremental after it. A new point chains only when that is safe;
otherwise it is a full and :class:`ParentChoice` carries the reason, which the job's result shows:

* no earlier point of the VM (on the same host) at the target, or the newest one was read without CBT;
* a point of the parent's chain is not intact (failed its verification, expired, gone);
* the VM's disks differ from the parent's (one added, removed or resized);
* the chain reached ``full_every`` incrementals.

Refusals that show only at the backup snapshot (user snapshots, a changeId the host no longer
knows) are decided by :mod:`ceso.backup.create` with :mod:`ceso.backup.cbt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from ceso.backup import catalog
from ceso.errors import CesoError

if TYPE_CHECKING:
    from ceso.backup.manifest import Manifest
    from ceso.backup.targets.base import Target
    from ceso.db.backup_models import BackupSet
    from ceso.runtime import Runtime

__all__ = ["ParentChoice", "choose_parent", "disk_layout", "parent_ref"]


@dataclass(frozen=True)
class ParentChoice:
    """The parent point and its per-disk changeIds, or None with the reason for a full."""

    parent: BackupSet | None
    change_ids: dict[int, str]
    reason: str | None


def disk_layout(vm_config: dict[str, Any]) -> list[tuple[int, int]]:
    """(device key, capacity KB) of each disk in a manifest's hardware summary."""
    return [(int(d["key"]), int(d["capacity_kb"])) for d in vm_config.get("disks", [])]


def parent_ref(row: BackupSet) -> dict[str, str]:
    """What a manifest records of its parent: enough to find and check it without the catalog."""
    return {"id": row.id, "path": row.path, "manifest_sha256": row.manifest_sha256 or ""}


def choose_parent(
    runtime: Runtime,
    target: Target,
    *,
    host: str,
    vm: str,
    target_name: str,
    vm_config: dict[str, Any],
    full_every: int | None,
) -> ParentChoice:
    """The point a new incremental of ``vm`` on ``host`` at ``target_name`` chains to, or why it cannot."""
    row = catalog.latest_point(runtime.engine, host=host, vm=vm, target=target_name)
    if row is None:
        return ParentChoice(None, {}, "no earlier backup of the VM at this target")
    reason = _why_not(runtime, target, row, vm_config=vm_config, full_every=full_every)
    return ParentChoice(None, {}, reason) if reason else ParentChoice(row, catalog.change_ids_of(row), None)


def _why_not(
    runtime: Runtime,
    target: Target,
    row: BackupSet,
    *,
    vm_config: dict[str, Any],
    full_every: int | None,
) -> str | None:
    """Why ``row`` cannot be the parent of a new point, or None when it can."""
    if not catalog.change_ids_of(row):
        return f"the last backup ({row.id}) was read without change tracking"
    with Session(runtime.engine) as session:
        try:
            chain = catalog.chain_of(session, row)
        except CesoError as exc:
            return exc.message
    broken = next((p for p in chain if p.status not in ("completed", "verified")), None)
    if broken is not None:
        return f"point {broken.id} of the last backup's chain is {broken.status}"
    if full_every is not None and row.chain_depth + 1 > full_every:
        return f"the chain has {row.chain_depth} incrementals (full_every {full_every})"
    return _disks_differ(target, row, vm_config)


def _disks_differ(target: Target, row: BackupSet, vm_config: dict[str, Any]) -> str | None:
    """Why the VM's disks no longer match the parent's (read from its manifest), or None."""
    from ceso.backup.manifest import read_manifest

    try:
        manifest: Manifest
        manifest, _ = read_manifest(target, row.path, expected_sha256=row.manifest_sha256)
    except CesoError as exc:
        return f"the last backup's manifest cannot be read: {exc.message}"
    if disk_layout(manifest.vm_config) != disk_layout(vm_config):
        return "the VM's disks changed since the last backup (added, removed or resized)"
    return None
