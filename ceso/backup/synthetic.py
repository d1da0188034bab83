"""Synthetic fulls: ``backup prune`` merges an expiring full and its incrementals into one full.

When retention expires a full that kept incrementals build on, prune no longer keeps the full
forever: the full and its incrementals up to the oldest point the policy keeps (``K``) are merged,
on the target, into a **synthetic full** that holds the disks as they were at ``K`` — stored
like any full (the allocated areas of each disk, holes left out, each range with its sha256).
It takes ``K``'s place: same moment, same retention class, ``K``'s changeIds (so the next
incremental chains to it). The points built on ``K`` then build on it.

Order, so that a crash at any moment leaves a consistent catalog and a restorable chain:

1. the synthetic full is catalogued ``pending`` (with the points it is made from), its files and
   manifest are written (streaming: the chain is read layer by layer, as a restore does) and
   read back, every hash checked;
2. the manifest of each point built on ``K`` is rewritten beside its own (``manifest.next.json``)
   with its new parent;
3. **the swap**, one catalog transaction (steps 2 to 4 hold the VM's lock, as a backup does
   while it chooses its parent and writes its point, so no point is added meanwhile): the synthetic full ``verified``, the points built on
   ``K`` pointing at it (parent, depth, manifest hash), the merged points ``expired``;
4. the rewritten manifests put in place and the merged points' files deleted.

Before 3 the old chain is the catalog's and intact; a crash leaves a ``pending`` synthetic full
and some ``manifest.next.json`` files, which the next prune removes (:func:`clean_leftovers`).
After 3 a reader that finds a manifest other than the catalog's reads ``manifest.next.json``
(:func:`ceso.backup.manifest.read_manifest`), and the next prune finishes step 4.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

import ceso
from ceso.backup import catalog
from ceso.backup.manifest import MANIFEST_NAME, NEXT_NAME, Manifest, ManifestFile, read_manifest
from ceso.backup.pipeline import DecodedStream, FileDigest, IteratorSource, range_size_for, store_stream
from ceso.backup.ranges import held_areas, merge_layers
from ceso.backup.rebuild import Point, file_bytes, open_layers, read_chain
from ceso.db.backup_models import BackupSet
from ceso.db.engine import session_scope
from ceso.db.types import utcnow
from ceso.errors import OperationError
from ceso.locks import vm_lock_name

if TYPE_CHECKING:
    from ceso.backup.targets.base import Target
    from ceso.runtime import Runtime

__all__ = ["MERGE_LOCK", "Merge", "clean_leftovers", "plan_merges", "run_merge"]

log = logging.getLogger(__name__)
MERGE_LOCK = "backup-merge"  # one merging prune at a time (a pending synthetic full is then a leftover)
COPY_CHUNK = 1 << 20


@dataclass
class Merge:
    """``points`` (the full first, the kept point ``K`` last) become one synthetic full standing
    for ``K``; ``rebased``: the points built on ``K`` (parents before children)."""

    points: list[BackupSet]
    rebased: list[BackupSet] = field(default_factory=list)
    retention_class: str | None = None
    synthetic_id: str | None = None  # once made
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": self.points[-1].vm,
            "points": [p.id for p in self.points],
            "stands_for": self.points[-1].id,
            "rebased": [p.id for p in self.rebased],
            "synthetic_id": self.synthetic_id,
            **({"error": self.error} if self.error else {}),
        }


def plan_merges(sets: list[BackupSet], kept: dict[str, str], gone: set[str]) -> list[Merge]:
    """The merges of one VM's points: a full kept only for its chain (retention class ``chain``)
    with its incrementals up to the first point the policy keeps. A chain that branches (two
    live points on one parent) is left as it is."""
    live = {s.id: s for s in sets if s.id not in gone}
    children: dict[str, list[BackupSet]] = {}
    for s in sorted(live.values(), key=lambda r: (r.created_at, r.id)):
        if s.parent_id is not None:
            children.setdefault(s.parent_id, []).append(s)
    merges = []
    for full in live.values():
        if full.parent_id is not None or kept.get(full.id) != "chain":
            continue
        path = [full]
        while kept.get(path[-1].id) == "chain":
            kids = children.get(path[-1].id, [])
            if len(kids) != 1:
                break
            path.append(kids[0])
        if len(path) < 2 or kept.get(path[-1].id) in (None, "chain"):
            continue
        rebased: list[BackupSet] = []
        todo = list(children.get(path[-1].id, []))
        while todo:
            point = todo.pop(0)
            rebased.append(point)
            todo.extend(children.get(point.id, []))
        merges.append(Merge(path, rebased, kept.get(path[-1].id)))
    return merges


def _ref(set_id: str, path: str, sha: str) -> dict[str, str]:
    return {"id": set_id, "path": path, "manifest_sha256": sha}


def _store(
    runtime: Runtime,
    target: Target,
    chunks: Iterator[bytes],
    key: str,
    form: Point,
    expected_bytes: int,
) -> FileDigest:
    """Store ``chunks`` at ``key`` as ``form``'s manifest says (compression, level, key)."""
    writer = target.open_write(key)
    try:
        digest = store_stream(
            IteratorSource(chunks),
            writer,
            compression=form.manifest.compression,
            level=form.manifest.level or None,
            threads=runtime.settings.backups.zstd_threads,
            key=form.key,
            range_bytes=range_size_for(expected_bytes),
        )
        stored = writer.commit()
    except BaseException:
        writer.abort()
        raise
    if stored != digest.stored_bytes:
        raise OperationError(f"target reports {stored} bytes for {key}, {digest.stored_bytes} were written")
    return digest


def _stored_name(f: ManifestFile, form: Point) -> str:
    from ceso.backup.codec import suffix_for

    return f.name + suffix_for(form.manifest.compression) + (".enc" if form.key is not None else "")


def _with(f: ManifestFile, digest: FileDigest, form: Point, **more: Any) -> ManifestFile:
    return dataclasses.replace(
        f,
        stored_name=_stored_name(f, form),
        logical_bytes=digest.logical_bytes,
        stored_bytes=digest.stored_bytes,
        sha256_raw=digest.sha256_raw,
        sha256_stored=digest.sha256_stored,
        range_bytes=digest.range_bytes,
        range_sha256=list(digest.range_sha256) or None,
        **more,
    )


def _recode(
    runtime: Runtime, target: Target, last: Point, f: ManifestFile, path: str, form: Point
) -> ManifestFile:
    """A whole file of the last point (configuration, descriptor) decoded, checked and stored again."""
    reader = target.open_read(f"{last.path}/{f.stored_name}")
    try:
        stream = DecodedStream(
            reader,
            name=f.name,
            compression=last.manifest.compression,
            digest=f.digest,
            key=last.key,
            point=last.manifest.id,
            disk=f.disk,
        )
        key = f"{path}/{_stored_name(f, form)}"
        return _with(f, _store(runtime, target, stream.chunks(), key, form, f.logical_bytes), form)
    finally:
        reader.close()


def _merge_disk(
    runtime: Runtime, target: Target, chain: list[Point], f: ManifestFile, path: str, form: Point
) -> ManifestFile:
    """One disk of the last point, merged from the chain's layers: its held areas, stored as a full."""
    layers, readers = open_layers(target, chain, f)
    try:
        size = file_bytes(f)
        areas = held_areas(layers, size)
        key = f"{path}/{_stored_name(f, form)}"
        merged = merge_layers(layers, size, holes=False)
        digest = _store(runtime, target, merged, key, form, sum(n for _, n in areas))
    finally:
        for reader in readers:
            reader.close()
    return _with(f, digest, form, extents=[[a, n] for a, n in areas], disk_bytes=size)


def _form(chain: list[Point]) -> Point:
    """Whose compression and key the synthetic full is stored with: the last point's, encrypted
    with the newest key of the chain if the last point is not (bytes stored encrypted stay so)."""
    last = chain[-1]
    if last.key is not None:
        return last
    encrypted = next((p for p in reversed(chain) if p.key is not None), None)
    if encrypted is None:
        return last
    manifest = dataclasses.replace(last.manifest, encryption=encrypted.manifest.encryption)
    return Point(manifest, last.path, encrypted.key)


def _make(runtime: Runtime, target: Target, merge: Merge, chain: list[Point], new_id: str, path: str) -> str:
    """Write the synthetic full's files and manifest, read them back; return the manifest's sha256."""
    from ceso.backup.verify import check_files

    last = chain[-1].manifest
    form = _form(chain)
    files = []
    for f in last.files:
        if f.role == "extent" and f.extents is not None:
            files.append(_merge_disk(runtime, target, chain, f, path, form))
        else:
            files.append(_recode(runtime, target, chain[-1], f, path, form))
    manifest = Manifest(
        id=new_id,
        vm=last.vm,
        host=last.host,
        kind=last.kind,
        created_at=last.created_at,  # the moment it holds: the last merged point's
        compression=last.compression,
        level=last.level,
        encryption=form.manifest.encryption,
        ceso_version=ceso.__version__,
        vm_config=last.vm_config,
        files=files,
        completed_at=utcnow().isoformat(),
        job_id=None,
        scope="full",
        merged_from=[_ref(p.id, p.path, p.manifest_sha256 or "") for p in merge.points],
    )
    body = manifest.to_json()
    target.write_all(f"{path}/{MANIFEST_NAME}", body)
    sha = hashlib.sha256(body).hexdigest()
    # Read back: the manifest against its hash, every file decoded and checked range by range.
    written, _ = read_manifest(target, path, expected_sha256=sha)
    check_files(target, Point(written, path, form.key))
    return sha


def _stage_rebased(
    target: Target, merge: Merge, new_id: str, path: str, sha: str
) -> dict[str, tuple[str, int, bytes]]:
    """Write each rebased point's manifest with its new parent as ``manifest.next.json``; return
    id -> (new manifest sha256, new depth, body)."""
    refs = {merge.points[-1].id: (_ref(new_id, path, sha), 0)}
    staged: dict[str, tuple[str, int, bytes]] = {}
    for point in merge.rebased:  # parents before children
        assert point.parent_id is not None
        ref, depth = refs[point.parent_id]
        manifest, _ = read_manifest(target, point.path, expected_sha256=point.manifest_sha256)
        manifest.parent = ref
        manifest.chain_depth = depth + 1
        body = manifest.to_json()
        target.write_all(f"{point.path}/{NEXT_NAME}", body)
        new_sha = hashlib.sha256(body).hexdigest()
        staged[point.id] = (new_sha, depth + 1, body)
        refs[point.id] = (_ref(point.id, point.path, new_sha), depth + 1)
    return staged


def _swap(
    runtime: Runtime,
    merge: Merge,
    new_id: str,
    sha: str,
    staged: dict[str, tuple[str, int, bytes]],
    manifest: Manifest,
) -> None:
    """One transaction: the synthetic full verified, the rebased points on it, the merged expired."""
    with session_scope(runtime.engine) as session:
        row = session.get(BackupSet, new_id)
        if row is None or row.status != "pending":
            raise OperationError(f"synthetic full {new_id} left the catalog during the merge")
        now = utcnow()
        catalog.add_files(session, manifest)
        row.status = "verified"
        row.verified_at = row.completed_at = now
        row.logical_bytes, row.stored_bytes = manifest.logical_bytes, manifest.stored_bytes
        row.manifest_sha256, row.manifest_schema = sha, manifest.schema
        row.change_ids = merge.points[-1].change_ids
        row.retention_class = merge.retention_class
        session.add(row)
        for point in merge.rebased:
            current = session.get(BackupSet, point.id)
            if current is None or current.manifest_sha256 != point.manifest_sha256:
                raise OperationError(f"backup {point.id} changed during the merge")
            new_sha, depth, _ = staged[point.id]
            if current.parent_id == merge.points[-1].id:
                current.parent_id = new_id
            current.chain_depth, current.manifest_sha256 = depth, new_sha
            session.add(current)
        for point in merge.points:
            current = session.get(BackupSet, point.id)
            if current is None or current.status not in ("completed", "verified"):
                raise OperationError(f"backup {point.id} changed during the merge")
            current.status = "expired"
            current.retention_class = None
            current.error = f"merged into synthetic full {new_id}"
            session.add(current)


def _settle(
    target: Target,
    rebased: list[BackupSet],
    staged: dict[str, tuple[str, int, bytes]],
    merged: list[BackupSet],
) -> None:
    """After the swap: the rewritten manifests in place, the merged points' files gone."""
    for point in rebased:
        target.write_all(f"{point.path}/{MANIFEST_NAME}", staged[point.id][2])
        target.delete(f"{point.path}/{NEXT_NAME}")
    for point in merged:
        target.delete_prefix(point.path + "/")


def run_merge(runtime: Runtime, merge: Merge) -> str:
    """Make the synthetic full of ``merge`` and swap it in; return its id.

    OperationError (nothing changed in the catalog, the synthetic full's files removed) when the
    chain cannot be read or the written full does not read back as written.
    """
    from ceso.backup.create import set_path
    from ceso.backup.keys import load_key
    from ceso.backup.targets.registry import open_target

    last = merge.points[-1]
    new_id = str(uuid.uuid4())
    path = set_path(last.vm, new_id)
    target = open_target(runtime, last.target)
    try:

        def key_for(key_id: str) -> bytes:
            return load_key(runtime.secrets, expected_id=key_id)

        manifest, _ = read_manifest(target, last.path, expected_sha256=last.manifest_sha256)
        enc = manifest.encryption
        chain = read_chain(
            target, Point(manifest, last.path, key_for(enc["key_id"]) if enc else None), key_for
        )
        if [p.manifest.id for p in chain] != [p.id for p in merge.points]:
            raise OperationError(f"backup {last.id}: its manifests' chain differs from the catalog's")
        catalog.start_set(
            runtime.engine,
            row=BackupSet(
                id=new_id,
                vm=last.vm,
                host=last.host,
                target=last.target,
                path=path,
                kind=last.kind,
                compression=manifest.compression,
                level=manifest.level,
                key_id=(_form(chain).manifest.encryption or {}).get("key_id"),
                created_at=last.created_at,
                scope="full",
                merged_from=json.dumps([p.id for p in merge.points]),
            ),
        )
        try:
            sha = _make(runtime, target, merge, chain, new_id, path)
        except Exception:
            _discard(runtime, target, new_id, path, [])
            raise
        # The VM's lock, as a backup holds it from choosing its parent to completing: no point is
        # added on the chain while the later points are rewritten and swapped.
        try:
            lease = runtime.locks.acquire(
                [vm_lock_name(last.host, last.vm)],
                holder=f"merge-{new_id}",
                wait_s=runtime.settings.locks.wait_s,
            )
        except Exception:
            _discard(runtime, target, new_id, path, [])
            raise
        with lease:
            merge.rebased = _built_on(runtime, last.id)
            try:
                staged = _stage_rebased(target, merge, new_id, path, sha)
                made, _ = read_manifest(target, path, expected_sha256=sha)
                lease.check()
                _swap(runtime, merge, new_id, sha, staged, made)
            except Exception:
                _discard(runtime, target, new_id, path, merge.rebased)
                raise
            merge.synthetic_id = new_id
            try:
                _settle(target, merge.rebased, staged, merge.points)
            except Exception:  # committed: the next prune finishes it (clean_leftovers)
                log.warning("synthetic full %s: could not tidy the target yet", new_id, exc_info=True)
    finally:
        target.close()
    return new_id


def _built_on(runtime: Runtime, set_id: str) -> list[BackupSet]:
    """The good points built on ``set_id``, directly or not, parents before children."""
    out: list[BackupSet] = []
    with Session(runtime.engine) as session:
        todo = [set_id]
        while todo:
            query = (
                select(BackupSet)
                .where(BackupSet.parent_id == todo.pop(0))
                .where(col(BackupSet.status).in_(("completed", "verified")))
                .order_by(col(BackupSet.created_at), col(BackupSet.id))
            )
            for row in session.exec(query).all():
                out.append(row)
                todo.append(row.id)
    return out


def _discard(runtime: Runtime, target: Target, new_id: str, path: str, rebased: list[BackupSet]) -> None:
    """Remove a synthetic full that did not make it (files, staged manifests, catalog row)."""
    for point in rebased:
        target.delete(f"{point.path}/{NEXT_NAME}")
    target.delete_prefix(path + "/")
    with session_scope(runtime.engine) as session:
        row = session.get(BackupSet, new_id)
        if row is not None and row.status == "pending":
            session.delete(row)


def clean_leftovers(runtime: Runtime, vm: str | None = None) -> dict[str, list[str]]:
    """What merges killed part-way left (run under :data:`MERGE_LOCK`): a ``pending`` synthetic
    full and its staged manifests removed; after a committed swap, the rewritten manifests put in
    place and the merged points' files deleted. Return the ids of each kind."""
    from ceso.backup.targets.registry import open_target

    with Session(runtime.engine) as session:
        query = select(BackupSet).where(col(BackupSet.merged_from).is_not(None))
        if vm is not None:
            query = query.where(BackupSet.vm == vm)
        synthetic = list(session.exec(query).all())
        vms = {(s.vm, s.target) for s in synthetic}
        others = [
            r
            for r in session.exec(select(BackupSet).where(col(BackupSet.vm).in_([v for v, _ in vms]))).all()
            if (r.vm, r.target) in vms
        ]
    removed: list[str] = []
    settled: list[str] = []
    targets: dict[str, Target] = {}
    try:
        for s in synthetic:
            target = targets.setdefault(s.target, open_target(runtime, s.target))
            if s.status == "pending":
                target.delete_prefix(s.path + "/")
                with session_scope(runtime.engine) as session:
                    row = session.get(BackupSet, s.id)
                    if row is not None and row.status == "pending":
                        session.delete(row)
                removed.append(s.id)
            elif s.status in ("completed", "verified"):
                merged = set(catalog.merged_ids(s.merged_from) or [])
                for r in others:
                    if r.id in merged and r.target == s.target and target.list(r.path + "/"):
                        target.delete_prefix(r.path + "/")
                        settled.append(r.id)
        for r in others:
            if r.status not in ("completed", "verified"):
                continue
            target = targets.setdefault(r.target, open_target(runtime, r.target))
            if target.size(f"{r.path}/{NEXT_NAME}") is None:
                continue
            _finish_manifest(target, r)
            settled.append(r.id)
    finally:
        for target in targets.values():
            target.close()
    return {"removed": removed, "settled": settled}


def _finish_manifest(target: Target, row: BackupSet) -> None:
    """A staged manifest: in place if the catalog expects it, else (its merge never committed) gone."""
    reader = target.open_read(f"{row.path}/{NEXT_NAME}")
    try:
        body = b""
        while chunk := reader.read(COPY_CHUNK):
            body += chunk
    finally:
        reader.close()
    if hashlib.sha256(body).hexdigest() == row.manifest_sha256:
        target.write_all(f"{row.path}/{MANIFEST_NAME}", body)
    target.delete(f"{row.path}/{NEXT_NAME}")
