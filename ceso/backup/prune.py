"""``backup delete`` and ``backup prune``: remove sets at their target, then in the catalog.

Neither breaks a chain: prune keeps every point a kept incremental needs
(:mod:`ceso.backup.retention`), and delete refuses a point a later one builds on.

A pruned set's row stays, marked ``expired`` (the history of what existed);
``backup delete`` removes the row too. Files go first: a crash between the two
steps leaves a catalog entry whose files are gone — ``verify`` reports it —
never files the catalog has forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from ceso.backup import catalog
from ceso.backup.policy import resolve_policy
from ceso.backup.retention import Candidate, select_expired
from ceso.db.backup_models import BackupSet
from ceso.db.engine import session_scope
from ceso.errors import ConflictError

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["PrunePlan", "delete_backup", "prune"]


def _delete_files(runtime: Runtime, row: BackupSet) -> int:
    from ceso.backup.targets.registry import open_target

    target = open_target(runtime, row.target)
    try:
        return target.delete_prefix(row.path + "/")
    finally:
        target.close()


def delete_backup(runtime: Runtime, ident: str) -> dict[str, Any]:
    """Delete a set's files at its target and its catalog entry."""
    with Session(runtime.engine) as session:
        row = catalog.find_set(session, ident)
        child = session.exec(
            select(BackupSet)
            .where(BackupSet.parent_id == row.id)
            .where(col(BackupSet.status).in_(["pending", "completed", "verified"]))
            .limit(1)
        ).first()
    if child is not None:
        raise ConflictError(
            f"backup {row.id} is the parent of backup {child.id}, which needs it to restore: "
            "delete the later points of its chain first"
        )
    removed = _delete_files(runtime, row)
    with session_scope(runtime.engine) as session:
        current = session.get(BackupSet, row.id)
        if current is not None:
            session.delete(current)
    return {"id": row.id, "vm": row.vm, "target": row.target, "files_deleted": removed}


@dataclass
class PrunePlan:
    """Sets expired (or, in a dry run, to expire) and kept; ``policies``: each VM's policy and its source."""

    expire: list[dict[str, Any]] = field(default_factory=list)
    keep: list[dict[str, Any]] = field(default_factory=list)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)


def prune(runtime: Runtime, *, vm: str | None = None, dry_run: bool = False) -> PrunePlan:
    """Apply each VM's retention policy (see :mod:`ceso.backup.policy` for which one applies).

    With ``dry_run`` nothing changes: no file, no status, no retention class.
    """
    settings = runtime.settings.backups
    with Session(runtime.engine) as session:
        query = select(BackupSet).where(col(BackupSet.status).in_(["completed", "verified"]))
        if vm is not None:
            query = query.where(BackupSet.vm == vm)
        rows = list(session.exec(query).all())
    by_vm: dict[tuple[str, str], list[BackupSet]] = {}
    for row in rows:
        by_vm.setdefault((row.host, row.vm), []).append(row)
    plan = PrunePlan()
    for (_host, name), sets in sorted(by_vm.items()):
        resolved = resolve_policy(settings, name)
        plan.policies[name] = resolved.to_dict()
        expired, kept = select_expired(
            [Candidate(s.id, s.created_at, s.status, s.parent_id) for s in sets], resolved.policy
        )
        gone = {c.id for c in expired}
        for s in sets:
            entry = {
                "id": s.id,
                "vm": s.vm,
                "created_at": s.created_at.isoformat(),
                "status": s.status,
                "policy": resolved.source,
            }
            if s.id in gone:
                plan.expire.append(entry)
            else:
                plan.keep.append({**entry, "retention_class": kept.get(s.id)})
        if dry_run:
            continue
        with session_scope(runtime.engine) as session:
            for s in sets:
                current = session.get(BackupSet, s.id)
                if current is not None and s.id in kept:
                    current.retention_class = kept[s.id]
                    session.add(current)
        for s in sets:
            if s.id in gone:
                _delete_files(runtime, s)
                catalog.set_status(runtime.engine, set_id=s.id, status="expired")
    return plan
