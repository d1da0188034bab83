"""``backup delete`` and ``backup prune``: remove sets at their target, then in the catalog.

Neither breaks a chain: prune keeps every point a kept incremental needs
(:mod:`ceso.backup.retention`), and delete refuses a point a later one builds on.
A full kept only because later points build on it is merged with its incrementals,
up to the oldest point the policy keeps, into a synthetic full that replaces them
(:mod:`ceso.backup.synthetic`).

A pruned set's row stays, marked ``expired`` (the history of what existed);
``backup delete`` removes the row too. Files go first: a crash between the two
steps leaves a catalog entry whose files are gone — ``verify`` reports it —
never files the catalog has forgotten.
"""

from __future__ import annotations

import uuid
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
    from ceso.locks.lease import Lease
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
    # Chains merged (or, in a dry run, to merge) into synthetic fulls: see Merge.to_dict.
    merge: list[dict[str, Any]] = field(default_factory=list)
    # What earlier merges killed part-way left, cleaned up: see synthetic.clean_leftovers.
    leftovers: dict[str, list[str]] = field(default_factory=dict)


def prune(runtime: Runtime, *, vm: str | None = None, dry_run: bool = False) -> PrunePlan:
    """Apply each VM's retention policy (see :mod:`ceso.backup.policy` for which one applies).

    With ``dry_run`` nothing changes: no file, no status, no retention class; the plan shows
    the merges that would be made.
    """
    from ceso.backup.synthetic import clean_leftovers

    plan = PrunePlan()
    lock = _MergeLock(runtime)
    try:
        if not dry_run and _has_chains(runtime, vm):
            lock.take()
            plan.leftovers = clean_leftovers(runtime, vm)
        with Session(runtime.engine) as session:
            query = select(BackupSet).where(col(BackupSet.status).in_(["completed", "verified"]))
            if vm is not None:
                query = query.where(BackupSet.vm == vm)
            rows = list(session.exec(query).all())
        by_vm: dict[tuple[str, str], list[BackupSet]] = {}
        for row in rows:
            by_vm.setdefault((row.host, row.vm), []).append(row)
        for (_host, name), sets in sorted(by_vm.items()):
            _prune_vm(runtime, plan, name, sets, lock, dry_run)
    finally:
        lock.release()
    return plan


def _prune_vm(
    runtime: Runtime, plan: PrunePlan, name: str, sets: list[BackupSet], lock: _MergeLock, dry_run: bool
) -> None:
    from ceso.backup.synthetic import plan_merges, run_merge
    from ceso.errors import CesoError

    resolved = resolve_policy(runtime.settings.backups, name)
    plan.policies[name] = resolved.to_dict()
    expired, kept = select_expired(
        [Candidate(s.id, s.created_at, s.status, s.parent_id) for s in sets], resolved.policy
    )
    gone = {c.id for c in expired}
    merges = plan_merges(sets, kept, gone)
    if not dry_run:
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
        for merge in merges:
            try:
                lock.take()  # a chain to merge may have appeared since the check
                run_merge(runtime, merge)
            except CesoError as exc:
                merge.error = exc.message
    merged = {p.id: m for m in merges for p in m.points if dry_run or m.synthetic_id}
    plan.merge.extend(m.to_dict() for m in merges)
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
        elif s.id in merged:
            plan.expire.append({**entry, "merged_into": merged[s.id].synthetic_id or "synthetic"})
        else:
            plan.keep.append({**entry, "retention_class": kept.get(s.id)})


class _MergeLock:
    """The lock one merging prune holds at a time (so a pending synthetic full of another is a
    leftover), taken when first needed, renewed while held."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lease: Lease | None = None

    def take(self) -> None:
        from ceso.backup.synthetic import MERGE_LOCK

        if self._lease is not None:
            self._lease.check()
            return
        self._lease = self._runtime.locks.acquire(
            [MERGE_LOCK], holder=f"prune-{uuid.uuid4()}", wait_s=self._runtime.settings.locks.wait_s
        )
        self._lease.start_renewal()

    def release(self) -> None:
        if self._lease is not None:
            self._lease.release()


def _has_chains(runtime: Runtime, vm: str | None) -> bool:
    """Whether any point of a chain (or a synthetic full) is in the catalog: merging may be needed."""
    with Session(runtime.engine) as session:
        query = select(BackupSet.id).where(
            col(BackupSet.parent_id).is_not(None) | col(BackupSet.merged_from).is_not(None)
        )
        if vm is not None:
            query = query.where(BackupSet.vm == vm)
        return session.exec(query.limit(1)).first() is not None
