"""A VM's snapshot tree as a flat list, and finding one snapshot by name.

ESXi allows several snapshots with one name; ceso refuses to guess which one
is meant (ConflictError), for revert and delete as for create.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ceso.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "MAX_SNAPSHOT_NAME",
    "SnapshotNode",
    "find_snapshot",
    "flatten",
    "snapshots_of",
    "validate_snapshot_name",
]

MAX_SNAPSHOT_NAME = 80
MAX_DESCRIPTION = 1000


@dataclass(frozen=True)
class SnapshotNode:
    """One snapshot; ``ref`` is the vim.vm.Snapshot managed object (not part of the JSON)."""

    id: int
    name: str
    description: str
    created: str | None
    state: str
    quiesced: bool
    parent: str | None
    parent_id: int | None
    current: bool
    ref: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The ``vm snapshot list --json`` shape of one snapshot."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created": self.created,
            "state": self.state,
            "quiesced": self.quiesced,
            "parent": self.parent,
            "parent_id": self.parent_id,
            "current": self.current,
        }


def flatten(snapshot_info: Any) -> list[SnapshotNode]:
    """Every snapshot of a VM's ``snapshot`` property, parents before children (None → [])."""
    if snapshot_info is None:
        return []
    current = getattr(snapshot_info, "currentSnapshot", None)
    current_id = getattr(current, "_moId", None)

    def walk(trees: Any, parent: Any) -> Iterator[SnapshotNode]:
        for tree in trees or []:
            created = getattr(tree, "createTime", None)
            yield SnapshotNode(
                id=int(tree.id),
                name=str(tree.name),
                description=str(tree.description or ""),
                created=created.isoformat() if created is not None else None,
                state=str(tree.state),
                quiesced=bool(tree.quiesced),
                parent=parent.name if parent is not None else None,
                parent_id=int(parent.id) if parent is not None else None,
                current=current_id is not None and getattr(tree.snapshot, "_moId", None) == current_id,
                ref=tree.snapshot,
            )
            yield from walk(tree.childSnapshotList, tree)

    return list(walk(snapshot_info.rootSnapshotList, None))


def snapshots_of(ops: Any, vm: Any) -> list[SnapshotNode]:
    """The snapshots VM ``vm`` has now, read from the host through ``ops`` (a backend), flattened."""
    return flatten(ops.props(vm, ["snapshot"]).get("snapshot"))


def validate_snapshot_name(name: str) -> str:
    """Return ``name`` if usable as a snapshot name; InvalidInputError naming the problem otherwise.

    Refused: empty, longer than 80 characters, control characters (newlines
    included), leading or trailing spaces.
    """
    if not name:
        raise InvalidInputError("snapshot name is empty")
    if len(name) > MAX_SNAPSHOT_NAME:
        raise InvalidInputError(
            f"snapshot name {name[:20]!r}... is {len(name)} characters; at most {MAX_SNAPSHOT_NAME}"
        )
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidInputError(f"snapshot name {name!r} contains control characters")
    if name != name.strip():
        raise InvalidInputError(f"snapshot name {name!r} must not start or end with a space")
    return name


def find_snapshot(nodes: list[SnapshotNode], name: str, *, vm: str, host: str) -> SnapshotNode:
    """The one snapshot called ``name``: NotFoundError if none, ConflictError if several."""
    found = [n for n in nodes if n.name == name]
    if not found:
        have = ", ".join(sorted({n.name for n in nodes})) or "none"
        raise NotFoundError(f"VM {vm!r} on host {host} has no snapshot {name!r} (snapshots: {have})")
    if len(found) > 1:
        raise ConflictError(
            f"VM {vm!r} on host {host} has {len(found)} snapshots named {name!r} "
            f"(ids {', '.join(str(n.id) for n in found)}); ceso will not guess which one"
        )
    return found[0]
