"""The backup catalog in SQL: sets and files. Keyword-only functions; engine or session passed in.

States::

    pending ──▶ completed ──verify──▶ verified ──prune──▶ expired
       └──────▶ failed                    (a damaged set goes back to failed)

A set becomes ``completed`` only after every file and its manifest were
committed at the target and their sizes read back from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from ceso.backup.manifest import Manifest
from ceso.db.backup_models import BACKUP_STATES, BackupFile, BackupSet
from ceso.db.engine import session_scope
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "add_files",
    "chain_of",
    "change_ids_of",
    "complete_set",
    "completed_set",
    "fail_set",
    "find_set",
    "latest_point",
    "list_sets",
    "merged_ids",
    "record_imported",
    "set_status",
    "set_to_dict",
    "start_set",
]

LIST_COLUMNS = (
    "id",
    "vm",
    "host",
    "target",
    "status",
    "kind",
    "created_at",
    "logical_bytes",
    "stored_bytes",
    "compression",
    "key_id",
    "verified_at",
    "scope",
    "parent_id",
    "chain_depth",
    "merged_from",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def set_to_dict(row: Any) -> dict[str, Any]:
    """The ``backup list --json`` shape (a BackupSet or a row of :data:`LIST_COLUMNS`)."""
    return {
        "id": row.id,
        "vm": row.vm,
        "host": row.host,
        "target": row.target,
        "status": row.status,
        "kind": row.kind,
        "created_at": _iso(row.created_at),
        "logical_bytes": row.logical_bytes,
        "stored_bytes": row.stored_bytes,
        "compression": row.compression,
        "encrypted": row.key_id is not None,
        "key_id": row.key_id,  # the public id of the key a restore needs (`backup key show-fingerprint`)
        "verified_at": _iso(row.verified_at),
        "scope": row.scope,  # full | incremental
        "parent_id": row.parent_id,
        "chain_length": row.chain_depth + 1,  # points a restore of this one reads (full included)
        # A full merged by prune from a full and its incrementals (their ids, oldest first).
        "synthetic": row.merged_from is not None,
        "merged_from": merged_ids(row.merged_from),
    }


def merged_ids(value: str | None) -> list[str] | None:
    """The ids a synthetic full was merged from (its ``merged_from`` column), or None."""
    import json

    return [str(i) for i in json.loads(value)] if value else None


def completed_set(engine: Engine, set_id: str) -> BackupSet | None:
    """Set ``set_id`` if it is completed (or verified): an earlier attempt of its job finished it."""
    with session_scope(engine) as session:
        row = session.get(BackupSet, set_id)
        if row is None or row.status not in ("completed", "verified"):
            return None
        session.expunge(row)
        return row


def start_set(engine: Engine, *, row: BackupSet) -> BackupSet:
    """Record a new set as ``pending``; a retried job's earlier row (same id) is reset."""
    with session_scope(engine) as session:
        old = session.get(BackupSet, row.id)
        if old is not None:
            if old.status in ("completed", "verified"):
                raise ConflictError(f"backup {row.id} already completed")
            session.exec(delete(BackupFile).where(col(BackupFile.set_id) == row.id))
            session.delete(old)
            session.flush()
        session.add(row)
    return row


def complete_set(engine: Engine, *, manifest: Manifest, manifest_sha256: str) -> None:
    """Store the files of ``manifest`` and mark its set ``completed``."""
    with session_scope(engine) as session:
        row = session.get(BackupSet, manifest.id)
        if row is None:
            raise NotFoundError(f"no catalog entry for backup {manifest.id}")
        add_files(session, manifest)
        row.status = "completed"
        row.logical_bytes = manifest.logical_bytes
        row.stored_bytes = manifest.stored_bytes
        row.manifest_sha256 = manifest_sha256
        row.completed_at = utcnow()
        row.error = None
        row.manifest_schema = manifest.schema
        row.scope = manifest.scope
        row.parent_id = (manifest.parent or {}).get("id")
        row.chain_depth = manifest.chain_depth
        row.change_ids = _change_ids(manifest)
        row.merged_from = _merged(manifest)
        session.add(row)


def _change_ids(manifest: Manifest) -> str | None:
    """Each disk's changeId at the point (JSON), or None when the point was read without CBT."""
    import json

    ids = {str(f.disk): f.change_id for f in manifest.files if f.change_id is not None}
    return json.dumps(ids, sort_keys=True) if ids else None


def _merged(manifest: Manifest) -> str | None:
    import json

    return json.dumps([m["id"] for m in manifest.merged_from]) if manifest.merged_from else None


def change_ids_of(row: BackupSet) -> dict[int, str]:
    """The per-disk changeIds recorded for a point (empty when it was read without CBT)."""
    import json

    return {int(k): str(v) for k, v in json.loads(row.change_ids).items()} if row.change_ids else {}


def latest_point(engine: Engine, *, host: str, vm: str, target: str) -> BackupSet | None:
    """The newest finished (completed or verified) point of ``vm`` on ``host`` at ``target``, or None."""
    with Session(engine) as session:
        query = (
            select(BackupSet)
            .where(BackupSet.host == host, BackupSet.vm == vm, BackupSet.target == target)
            .where(col(BackupSet.status).in_(("completed", "verified")))
            .order_by(col(BackupSet.created_at).desc(), col(BackupSet.id).desc())
            .limit(1)
        )
        return session.exec(query).first()


def chain_of(session: Session, row: BackupSet) -> list[BackupSet]:
    """The points a restore of ``row`` reads, full first; NotFoundError if one is gone from the catalog."""
    chain = [row]
    while chain[0].parent_id is not None:
        parent = session.get(BackupSet, chain[0].parent_id)
        if parent is None:
            raise NotFoundError(f"backup {row.id}: its chain lost point {chain[0].parent_id}")
        chain.insert(0, parent)
    return chain


def add_files(session: Session, manifest: Manifest) -> None:
    for f in manifest.files:
        session.add(
            BackupFile(
                set_id=manifest.id,
                name=f.name,
                role=f.role,
                source=f.source,
                stored_name=f.stored_name,
                logical_bytes=f.logical_bytes,
                stored_bytes=f.stored_bytes,
                sha256_raw=f.sha256_raw,
                sha256_stored=f.sha256_stored,
            )
        )


def fail_set(engine: Engine, *, set_id: str, error: str) -> bool:
    """Mark a pending set ``failed`` with the reason. False if the set is completed (or verified):
    it is left as it is, files and all; True otherwise (failed now, or gone)."""
    with session_scope(engine) as session:
        row = session.get(BackupSet, set_id)
        if row is not None and row.status in ("completed", "verified"):
            return False
        if row is not None and row.status == "pending":
            row.status = "failed"
            row.error = error[:2000]
            session.add(row)
    return True


def set_status(engine: Engine, *, set_id: str, status: str, error: str | None = None) -> BackupSet:
    """Move a set to ``status`` (verified also stamps ``verified_at``)."""
    if status not in BACKUP_STATES:
        raise InvalidInputError(f"unknown backup status {status!r}")
    with session_scope(engine) as session:
        row = session.get(BackupSet, set_id)
        if row is None:
            raise NotFoundError(f"no backup {set_id}")
        row.status = status
        row.error = error
        if status == "verified":
            row.verified_at = utcnow()
        session.add(row)
    return row


def find_set(session: Session, ident: str) -> BackupSet:
    """A set by id or unique id prefix (at least 6 characters)."""
    row = session.get(BackupSet, ident)
    if row is not None:
        return row
    if len(ident) < 6:
        raise NotFoundError(f"no backup {ident!r} (give the id or at least 6 of its first characters)")
    matches = session.exec(select(BackupSet).where(col(BackupSet.id).startswith(ident)).limit(2)).all()
    if not matches:
        raise NotFoundError(f"no backup {ident!r}")
    if len(matches) > 1:
        raise ConflictError(f"backup id prefix {ident!r} is ambiguous; give more characters")
    return matches[0]


def files_of(session: Session, set_id: str) -> list[BackupFile]:
    query = select(BackupFile).where(BackupFile.set_id == set_id).order_by(col(BackupFile.id))
    return list(session.exec(query).all())


def list_sets(
    engine: Engine,
    *,
    vm: str | None = None,
    target: str | None = None,
    status: str | None = None,
    limit: int | None = 100,
) -> list[dict[str, Any]]:
    """Sets newest first, filtered; one indexed query over :data:`LIST_COLUMNS` (no ORM objects), and
    one for each set's last restore drill (``last_drill``: :func:`ceso.backup.drills.drill_to_dict`,
    or None)."""
    from ceso.backup.drills import last_drills

    if status is not None and status not in BACKUP_STATES:
        raise InvalidInputError(f"--status must be one of {', '.join(BACKUP_STATES)}")
    table = BackupSet.__table__  # type: ignore[attr-defined]
    query = sa.select(*(table.c[name] for name in LIST_COLUMNS)).order_by(
        table.c.created_at.desc(), table.c.id.desc()
    )
    if vm is not None:
        query = query.where(table.c.vm == vm)
    if target is not None:
        query = query.where(table.c.target == target)
    if status is not None:
        query = query.where(table.c.status == status)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = [set_to_dict(r) for r in conn.execute(query)]
    drills = last_drills(engine, set_ids=[r["id"] for r in rows])
    for row in rows:
        row["last_drill"] = drills.get(row["id"])
    return rows


def record_imported(
    engine: Engine, *, manifest: Manifest, target: str, path: str, manifest_sha256: str
) -> bool:
    """Catalog a set found on a target; False if the catalog already has it."""
    with session_scope(engine) as session:
        if session.get(BackupSet, manifest.id) is not None:
            return False
        created = datetime.fromisoformat(manifest.created_at)
        session.add(
            BackupSet(
                id=manifest.id,
                vm=manifest.vm,
                host=manifest.host,
                target=target,
                path=path,
                status="completed",
                kind=manifest.kind,
                compression=manifest.compression,
                level=manifest.level,
                key_id=(manifest.encryption or {}).get("key_id"),
                job_id=manifest.job_id,
                logical_bytes=manifest.logical_bytes,
                stored_bytes=manifest.stored_bytes,
                manifest_sha256=manifest_sha256,
                manifest_schema=manifest.schema,
                scope=manifest.scope,
                parent_id=(manifest.parent or {}).get("id"),
                chain_depth=manifest.chain_depth,
                change_ids=_change_ids(manifest),
                merged_from=_merged(manifest),
                created_at=created,
                completed_at=datetime.fromisoformat(manifest.completed_at)
                if manifest.completed_at
                else created,
            )
        )
        session.flush()
        add_files(session, manifest)
    return True
