"""``backup.create``: one VM, streamed from its datastore to a target as a set with a manifest.

Steps: inspect → lock the VM and a slot of the target → catalog ``pending`` →
copy .vmx/.nvram → snapshot (hot) or shutdown (cold on a running VM) → copy the
disks → remove the snapshot / power back on (always) → write the manifest →
confirm every size at the target → catalog ``completed``.

On any failure the set is marked ``failed`` and its files are deleted from the
target (best effort); a retried delivery of the job (same set id) first removes
its earlier snapshot and files. Never leaves a ``completed`` entry for a set
whose files are not all at the target.

The record follows the target: a fault of the broker, SQL, a lock or a connection once the
manifest was written does not discard the set. The runner reconciles (:func:`reconcile_set`): a
set complete at the target (:func:`completed_set`: this job's manifest, every file of its size)
is cataloged ``completed`` and the job succeeds with ``reconciled``; otherwise it is discarded.
If SQL is still down, the delivery comes again and the redelivered attempt adopts the set
(:func:`_adopt`: the set's id and path are the job's id) instead of copying it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import ceso
from ceso.backup import catalog
from ceso.backup.cbt import (
    ChangeIdRefusedError,
    TrackingUnavailableError,
    disk_points,
    query_areas,
    tracking_ready,
)
from ceso.backup.chain import choose_parent, parent_ref
from ceso.backup.datastore_files import DatastoreFiles, datastore_files
from ceso.backup.datastore_http import DatastoreHttp
from ceso.backup.manifest import MANIFEST_NAME, Manifest, ManifestFile, read_manifest
from ceso.backup.pipeline import range_size_for, store_stream
from ceso.backup.progress import ByteProgress
from ceso.backup.quiesce import remove_leftover_snapshots, shut_down, temporary_snapshot
from ceso.backup.ranges import AreaSource, HttpAreaReader, clip_areas
from ceso.backup.vmsource import BACKUP_PROPERTIES, BackupPlan, SourceFile, plan_backup
from ceso.db.backup_models import BackupSet
from ceso.db.types import utcnow
from ceso.errors import CesoError, OperationError
from ceso.jobs.faults import is_fault, sql_unreachable
from ceso.jobs.retry import ReadResume, read_resume, retry_host
from ceso.metrics.record import observe_backup_bytes
from ceso.operations.leftovers import left_off
from ceso.plans import BackupSteps, Step

if TYPE_CHECKING:
    from ceso.backends.api import ApiVmBackend
    from ceso.backends.protocol import AnyBackend
    from ceso.backup.targets.base import Target
    from ceso.jobs.context import JobContext

__all__ = ["completed_set", "reconcile_set", "run_backup", "set_path"]

log = logging.getLogger(__name__)


def set_path(vm: str, set_id: str) -> str:
    """Where a set lives on its target: ``<vm>/<set id>`` (the VM name made path-safe)."""
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', vm)}/{set_id}"


def _copy(
    target: Target,
    http: DatastoreFiles,
    source: SourceFile,
    key: str,
    opts: dict[str, Any],
    enc_key: bytes | None,
    progress: ByteProgress,
) -> ManifestFile:
    """Stream one datastore file into ``key`` at the target; confirm the committed size."""
    expected = opts["sizes"].get(source.name, 0)
    return _store(
        target, http.open_read(source.datastore, source.path), source, key, opts, enc_key, progress, expected
    )


def _copy_areas(
    target: Target,
    http: DatastoreHttp,
    source: SourceFile,
    key: str,
    opts: dict[str, Any],
    enc_key: bytes | None,
    progress: ByteProgress,
    areas: list[tuple[int, int]],
    change_id: str,
) -> ManifestFile:
    """Store only ``areas`` of a data file (HTTP Range reads); the manifest records them."""
    disk_bytes = http.size(source.datastore, source.path)
    areas = clip_areas(areas, disk_bytes)  # a thin file may end before the disk's capacity
    remote = AreaSource(HttpAreaReader(http), source.datastore, source.path, areas)
    stored = _store(target, remote, source, key, opts, enc_key, progress, sum(n for _, n in areas))
    return dataclasses.replace(
        stored, extents=[[a, n] for a, n in areas], disk_bytes=disk_bytes, change_id=change_id
    )


def _store(
    target: Target,
    remote: Any,
    source: SourceFile,
    key: str,
    opts: dict[str, Any],
    enc_key: bytes | None,
    progress: ByteProgress,
    expected_bytes: int,
) -> ManifestFile:
    writer = target.open_write(key)
    try:
        digest = store_stream(
            remote,
            writer,
            compression=opts["compression"],
            level=opts["level"],
            threads=opts["threads"],
            key=enc_key,
            on_bytes=progress,
            range_bytes=range_size_for(expected_bytes),  # each range its own sha256
        )
        size = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        remote.close()
    if size != digest.stored_bytes:
        raise OperationError(f"target reports {size} bytes for {key}, {digest.stored_bytes} were written")
    return ManifestFile(
        name=source.name,
        role=source.role,
        source=source.source,
        stored_name=key.rsplit("/", 1)[-1],
        logical_bytes=digest.logical_bytes,
        stored_bytes=digest.stored_bytes,
        sha256_raw=digest.sha256_raw,
        sha256_stored=digest.sha256_stored,
        disk=source.disk,
        link=source.link,
        range_bytes=digest.range_bytes,
        range_sha256=list(digest.range_sha256) or None,
    )


@contextmanager
def _resumes_noted(ctx: JobContext, resume: ReadResume) -> Iterator[None]:
    """Note on the current step the tries of the reads it resumed (kept by the reader thread)."""
    try:
        yield
    finally:
        for record in resume.drain():
            ctx.note_retry(record)


@contextmanager
def _target_slot(ctx: JobContext, target: str) -> Iterator[Any]:
    """One of ``backups.target_concurrency`` slots of the target, renewed while held, always released."""
    from ceso.locks import target_lock_name

    settings = ctx.runtime.settings
    with ctx.step(BackupSteps.target_slot, details={"target": target}) as rec:
        lease = ctx.runtime.locks.semaphore(
            target_lock_name(target),
            settings.backups.target_concurrency,
            holder=ctx.job.id,
            wait_s=settings.locks.wait_s,
        )
        rec["waited_s"] = round(lease.waited_s, 3)
    with lease:
        yield lease


def run_backup(ctx: JobContext, enc_key: bytes | None) -> dict[str, Any]:
    """Run a ``backup.create`` job (params: :class:`ceso.backup.specs.CreateBackup` resolved, and key_id)."""
    from ceso.backup.specs import CreateBackup
    from ceso.backup.targets.registry import open_target

    p = ctx.params
    spec = CreateBackup.from_job(p)
    settings = ctx.runtime.settings.backups
    # The host's route: the API (files over /folder) or, on a free-licensed host, SSH (vim-cmd
    # snapshots, files read with cat); the same steps, set and manifest either way.
    # A read cut by a lost connection resumes from its byte within jobs.host_retry_s (ReadResume).
    resume = read_resume(ctx)
    with (
        ctx.step(BackupSteps.inspect, progress=2, details={"vm": p["vm"]}) as rec,
        _resumes_noted(ctx, resume),
    ):
        # Only reads (the login included): tried again after a transient host fault.
        ops, http, vm, plan, sizes = retry_host(
            ctx, BackupSteps.inspect, lambda _try: _inspect(ctx, p["vm"], resume)
        )
        running = plan.power_state != "poweredOff"
        # An earlier attempt that shut the VM down and died before powering it back on: the VM
        # was running before this job, so this attempt powers it back on afterwards.
        was_running = running or left_off(ctx.earlier_steps, BackupSteps.shut_down, BackupSteps.power_back_on)
        kind = "hot" if running and spec.mode != "cold" else "cold"
        rec.update(
            kind=kind,
            power_state=plan.power_state,
            was_running=was_running,
            files=len(plan.files),
            logical_bytes=sum(sizes.values()),
        )
    opts: dict[str, Any] = {
        "compression": spec.compress,
        "level": spec.level,
        "threads": settings.zstd_threads,
        "sizes": sizes,
    }
    target = open_target(ctx.runtime, p["target"])
    set_id, path = ctx.job.id, set_path(p["vm"], ctx.job.id)
    try:
        with ctx.locks(BackupSteps.lock, vms=[p["vm"]]), _target_slot(ctx, p["target"]) as slot:
            if BackupSteps.write_manifest.ran_in(ctx.earlier_steps):
                adopted = _adopt(ctx, ops, vm, target, path)
                if adopted is not None:
                    return adopted
            with ctx.step(
                BackupSteps.catalog_pending, progress=5, details={"set_id": set_id, "path": path}
            ) as rec:
                done = catalog.completed_set(ctx.runtime.engine, set_id)
                if done is not None:  # an earlier attempt completed the set, then died: adopt it
                    rec["adopted"] = True
                else:
                    row = BackupSet(
                        id=set_id,
                        vm=p["vm"],
                        host=ctx.job.host,
                        target=p["target"],
                        path=path,
                        kind=kind,
                        compression=opts["compression"],
                        level=opts["level"] or 0,
                        key_id=p.get("key_id"),
                        job_id=ctx.job.id,
                    )
                    catalog.start_set(ctx.runtime.engine, row=row)
                    target.delete_prefix(path + "/")  # what an earlier attempt of this job left
            if done is not None:
                return _adopted(ctx, ops, vm, target, done)
            point = _Point()
            if spec.incremental:
                with ctx.step(BackupSteps.choose_parent, progress=6) as rec:
                    choice = choose_parent(
                        ctx.runtime,
                        target,
                        host=ctx.job.host,
                        vm=p["vm"],
                        target_name=p["target"],
                        vm_config=plan.vm_config,
                        full_every=spec.full_every,
                    )
                    point.parent, point.since, point.reason = choice.parent, choice.change_ids, choice.reason
                    rec.update(parent=choice.parent.id if choice.parent else None, reason=choice.reason)
            remove_leftover_snapshots(ctx, ops, vm)
            progress = ByteProgress(ctx, sum(sizes.values()), start=10, end=90, checks=(slot.check,))
            manifest = Manifest(
                id=set_id,
                vm=p["vm"],
                host=ctx.job.host,
                kind=kind,
                created_at=row.created_at.isoformat(),
                compression=opts["compression"],
                level=opts["level"] or 0,
                encryption={"algorithm": "aes-256-gcm-chunked", "key_id": p["key_id"]} if enc_key else None,
                ceso_version=ceso.__version__,
                vm_config=plan.vm_config,
                job_id=ctx.job.id,
            )
            _copy_all(
                ctx,
                ops,
                vm,
                plan,
                kind,
                was_running,
                target,
                http,
                path,
                opts,
                enc_key,
                progress,
                manifest,
                point,
                resume,
            )
            progress.report()
            manifest_sha = _finish(ctx, target, path, manifest)
    except BaseException as exc:
        if BackupSteps.write_manifest.ran_in(ctx.steps) and is_fault(exc):
            raise  # the set may be complete at the target: the runner reconciles (reconcile_set)
        _discard(ctx, target, set_id, path, exc)
        raise
    finally:
        target.close()
    return {
        **_result(ctx, manifest, manifest_sha, route=ops.route),
        "change_tracking": point.tracked,
        # Why an incremental was asked for and a full made; why disks were read whole.
        **({"fallback": point.reason} if spec.incremental and point.reason else {}),
        **({"read_whole": point.reason} if point.reason and not point.tracked else {}),
    }


def _inspect(
    ctx: JobContext, name: str, resume: ReadResume
) -> tuple[AnyBackend, DatastoreFiles, Any, BackupPlan, dict[str, int]]:
    """The host's backend (its session opened), its file access (reads resumed by ``resume``), VM
    ``name``, what to copy and each file's size. Only reads."""
    ops = ctx.backend()
    http = datastore_files(ops, resume)
    vm = ops.find(name)
    # The hardware a clone carries (CD-ROMs, serial ports, USB, ...) is read as a clone reads it.
    plan = plan_backup(http, name, ops.props(vm, BACKUP_PROPERTIES), ops.source_props(vm))
    return ops, http, vm, plan, {f.name: http.size(f.datastore, f.path) for f in plan.files}


@dataclasses.dataclass
class _Point:
    """How this point is read: its parent and the parent's changeIds, or why it is a full."""

    parent: BackupSet | None = None
    since: dict[int, str] = dataclasses.field(default_factory=dict)
    reason: str | None = None  # why a requested incremental is a full (or why CBT was not used)
    tracked: bool = False  # disks read through CBT (allocated or changed areas only)

    def to_full(self, reason: str) -> None:
        if self.parent is not None or self.reason is None:
            self.reason = reason
        self.parent, self.since = None, {}


def _copy_all(
    ctx: JobContext,
    ops: AnyBackend,
    vm: Any,
    plan: BackupPlan,
    kind: str,
    was_running: bool,
    target: Target,
    http: DatastoreFiles,
    path: str,
    opts: dict[str, Any],
    enc_key: bytes | None,
    progress: ByteProgress,
    manifest: Manifest,
    point: _Point,
    resume: ReadResume,
) -> None:
    from ceso.backup.codec import suffix_for

    suffix = suffix_for(opts["compression"]) + (".enc" if enc_key else "")

    def copy(
        step: Step, source: SourceFile, areas: list[tuple[int, int]] | None = None, change_id: str = ""
    ) -> None:
        details: dict[str, Any] = {"source": source.source, "role": source.role}
        if areas is not None:
            details.update(areas=len(areas), area_bytes=sum(n for _, n in areas))
        with ctx.step(step, item=source.name, details=details), _resumes_noted(ctx, resume):
            key = f"{path}/{source.name}{suffix}"
            if areas is None:
                copied = _copy(target, http, source, key, opts, enc_key, progress)
            else:
                api_files = cast("DatastoreHttp", http)  # areas are read only on the API route
                copied = _copy_areas(
                    target, api_files, source, key, opts, enc_key, progress, areas, change_id
                )
            manifest.files.append(copied)
            observe_backup_bytes(ctx.job.host, target.name, "read", copied.logical_bytes)
            observe_backup_bytes(ctx.job.host, target.name, "stored", copied.stored_bytes)

    config_files = [f for f in plan.files if f.role in ("vmx", "nvram")]
    disk_files = [f for f in plan.files if f.role not in ("vmx", "nvram")]
    for source in config_files:  # before the snapshot: afterwards the .vmx names the snapshot's delta disks
        copy(BackupSteps.copy_config, source)
    tracked = _use_tracking(ctx, ops, http, vm, kind, was_running, disk_files, point)
    quiet: contextlib.AbstractContextManager[Any]
    if kind == "hot" or tracked:
        quiet = temporary_snapshot(ctx, ops, vm, quiesce=plan.tools_running and kind == "hot")
    elif was_running:
        quiet = shut_down(ctx, ops, vm, timeout_s=ctx.runtime.settings.backups.shutdown_timeout_s)
    else:
        quiet = contextlib.nullcontext()
    with quiet as snapshot:
        areas = _disk_areas(ctx, cast("ApiVmBackend", ops), vm, snapshot, point) if tracked else None
        for source in disk_files:
            if areas is not None and source.role == "extent" and source.disk in areas:
                change_id, disk_areas = areas[source.disk]
                copy(BackupSteps.copy_disk, source, disk_areas, change_id)
            else:
                copy(BackupSteps.copy_disk, source)
    manifest.scope = "incremental" if point.parent is not None else "full"
    if point.parent is not None:
        manifest.parent = parent_ref(point.parent)
        manifest.chain_depth = point.parent.chain_depth + 1


def _use_tracking(
    ctx: JobContext,
    ops: AnyBackend,
    http: DatastoreFiles,
    vm: Any,
    kind: str,
    was_running: bool,
    disk_files: list[SourceFile],
    point: _Point,
) -> bool:
    """Whether this point reads its disks through CBT (switching it on if needed); if not, why
    goes into ``point`` (and a requested incremental becomes a full)."""
    # CBT needs the backup snapshot; a shutdown for --cold keeps today's whole-file reads. It is
    # the API's (QueryChangedDiskAreas), and its areas are read with /folder Range requests: the
    # SSH route of a free-licensed host reads whole files.
    tracked = kind == "hot" or not was_running
    if not (ops.route == "api" and isinstance(http, DatastoreHttp)):
        point.to_full("the host is reached over SSH, which has no change tracking; disks are read whole")
        tracked = False
    if tracked:
        with ctx.step(BackupSteps.change_tracking) as rec:
            # Reads, and a switch asked for again only while it is off: repeated after a transient
            # host fault (a cut here once failed backups a resumed read would have outlived).
            why = retry_host(
                ctx, BackupSteps.change_tracking, lambda _try: _tracking_refusal(ops, vm, disk_files)
            )
            rec["ready"] = why is None
            if why is not None:
                point.to_full(why)
                tracked = False
    elif point.parent is not None:
        point.to_full("a cold backup of a running VM reads its disks whole")
    return tracked


def _tracking_refusal(ops: AnyBackend, vm: Any, disk_files: list[SourceFile]) -> str | None:
    """Why this point cannot read its disks through change tracking, or None once tracking is on
    (switched on if it was off)."""
    # This job's own leftover snapshot is gone by now (remove_leftover_snapshots): any is the user's.
    if ops.snapshot_tree(vm) or any((f.link or 0) > 0 for f in disk_files):
        # A range of the base flat file is then not the disk's content: read the chain file by file.
        return "the VM has snapshots of its own; its disks are read file by file"
    return tracking_ready(cast("ApiVmBackend", ops), vm, has_snapshots=False)


def _disk_areas(
    ctx: JobContext, ops: ApiVmBackend, vm: Any, snapshot: Any, point: _Point
) -> dict[int, tuple[str, list[tuple[int, int]]]] | None:
    """Per disk index: its changeId and the areas to read (changed since the parent, or allocated).

    None when the host cannot track changes (the disks are then read whole). A changeId the host
    refuses turns the point into a full, and every disk is asked for its allocated areas instead.
    """
    with ctx.step(BackupSteps.query_changed_areas) as rec:
        try:
            # Reads only: asked again after a transient host fault.
            out = retry_host(
                ctx, BackupSteps.query_changed_areas, lambda _try: _areas_of(ops, vm, snapshot, point)
            )
        except TrackingUnavailableError as exc:
            point.to_full(str(exc))
            rec["tracked"] = False
            return None
        point.tracked = True
        rec.update(
            tracked=True,
            since="parent" if point.parent is not None else "*",
            area_bytes=sum(n for _, a in out.values() for _, n in a),
        )
        return out


def _areas_of(
    ops: ApiVmBackend, vm: Any, snapshot: Any, point: _Point
) -> dict[int, tuple[str, list[tuple[int, int]]]]:
    """Per disk index: its changeId and the areas to read; a point that cannot chain to its parent
    becomes a full (``point.to_full``) and every disk is asked for its allocated areas."""
    out: dict[int, tuple[str, list[tuple[int, int]]]] = {}
    for disk in disk_points(ops, snapshot):
        if point.parent is not None and disk.index not in point.since:
            point.to_full(f"the last backup recorded no changeId for disk {disk.key}")
            return _areas_of(ops, vm, snapshot, point)
        since = point.since[disk.index] if point.parent is not None else "*"
        try:
            areas = query_areas(ops, vm, snapshot, disk, since)
        except ChangeIdRefusedError as exc:
            point.to_full(str(exc))
            return _areas_of(ops, vm, snapshot, point)
        out[disk.index] = (disk.change_id, areas)
    return out


def _finish(ctx: JobContext, target: Target, path: str, manifest: Manifest) -> str:
    import hashlib

    with ctx.step(BackupSteps.write_manifest, progress=92):
        manifest.completed_at = utcnow().isoformat()
        body = manifest.to_json()
        target.write_all(f"{path}/{MANIFEST_NAME}", body)
    with ctx.step(BackupSteps.confirm_sizes, progress=96) as rec:
        for f in manifest.files:
            seen = target.size(f"{path}/{f.stored_name}")
            if seen != f.stored_bytes:
                raise OperationError(
                    f"{f.stored_name}: target reports {seen} bytes, expected {f.stored_bytes}"
                )
        rec["files"] = len(manifest.files) + 1
    sha = hashlib.sha256(body).hexdigest()
    with ctx.step(BackupSteps.catalog_completed, progress=99):
        catalog.complete_set(ctx.runtime.engine, manifest=manifest, manifest_sha256=sha)
    return sha


def _adopted(ctx: JobContext, ops: AnyBackend, vm: Any, target: Target, done: BackupSet) -> dict[str, Any]:
    """The result of a set an earlier attempt of this job completed (its manifest read back from
    the target, every file there at its size); that attempt's snapshot is removed if it is left."""
    remove_leftover_snapshots(ctx, ops, vm)
    with ctx.step(BackupSteps.confirm_sizes, progress=96) as rec:
        manifest, sha = read_manifest(target, done.path, expected_sha256=done.manifest_sha256)
        for f in manifest.files:
            seen = target.size(f"{done.path}/{f.stored_name}")
            if seen != f.stored_bytes:
                raise OperationError(
                    f"{f.stored_name}: target reports {seen} bytes, expected {f.stored_bytes}",
                    code="backup_corrupt",
                )
        rec.update(files=len(manifest.files) + 1, adopted=True)
    return {**_result(ctx, manifest, sha, route=ops.route), "adopted": True}


def _result(ctx: JobContext, manifest: Manifest, sha: str, *, route: str | None) -> dict[str, Any]:
    """The job's result for the set of ``manifest`` (as written, or as read back at the target)."""
    p = ctx.params
    return {
        "backup_id": manifest.id,
        "vm": p["vm"],
        "target": p["target"],
        "kind": manifest.kind,
        "route": route,
        "files": len(manifest.files),
        "logical_bytes": manifest.logical_bytes,
        "stored_bytes": manifest.stored_bytes,
        "manifest_sha256": sha,
        "scope": manifest.scope,
        "parent_id": (manifest.parent or {}).get("id"),
        "chain_length": manifest.chain_depth + 1,
        "change_tracking": any(f.change_id is not None for f in manifest.files),
        "read_bytes": sum(f.logical_bytes for f in manifest.files),
    }


def completed_set(ctx: JobContext, target: Target, path: str) -> tuple[Manifest, str] | None:
    """This job's set at ``path`` on ``target`` and its manifest's sha256, if it is complete: the
    manifest is there, names this job (set id and ``job_id``), was finished, and every file it lists
    has its recorded stored size at the target (what "confirm sizes at target" reads). None else.

    Only reads the target (the manifest and each file's size; the files' bytes and their sha256 are
    read by ``backup verify``). Raises the target's errors."""
    if target.size(f"{path}/{MANIFEST_NAME}") is None:
        return None
    try:
        manifest, sha = read_manifest(target, path, expected_sha256=None)
    except OperationError:
        return None  # cut short or not a manifest: not a complete set
    if manifest.id != ctx.job.id or manifest.job_id != ctx.job.id or manifest.completed_at is None:
        return None
    for f in manifest.files:
        if target.size(f"{path}/{f.stored_name}") != f.stored_bytes:
            return None
    return manifest, sha


def _catalog_completed(ctx: JobContext, path: str, manifest: Manifest, sha: str) -> None:
    """Catalog this job's complete set as ``completed``: its ``pending`` row is made again if an
    earlier attempt's was lost; a row already ``completed`` with this manifest is left as it is
    (the earlier write committed, its answer was lost)."""
    from sqlmodel import Session

    with Session(ctx.runtime.engine) as session:
        row = session.get(BackupSet, manifest.id)
    if row is not None and row.status in ("completed", "verified") and row.manifest_sha256 == sha:
        return
    if row is None:
        p = ctx.params
        catalog.start_set(
            ctx.runtime.engine,
            row=BackupSet(
                id=manifest.id,
                vm=p["vm"],
                host=ctx.job.host,
                target=p["target"],
                path=path,
                kind=manifest.kind,
                compression=manifest.compression,
                level=manifest.level,
                key_id=p.get("key_id"),
                job_id=ctx.job.id,
            ),
        )
    catalog.complete_set(ctx.runtime.engine, manifest=manifest, manifest_sha256=sha)


def _adopt(ctx: JobContext, ops: AnyBackend, vm: Any, target: Target, path: str) -> dict[str, Any] | None:
    """A redelivered job whose earlier attempt wrote the manifest: its set, if complete at the
    target, is cataloged ``completed`` and becomes the job's result (no second copy); this job's
    snapshot, if one is left, is removed first. None if the set is not complete (copied again)."""
    with ctx.step(BackupSteps.adopt_set, details={"path": path}) as rec:
        found = completed_set(ctx, target, path)
        rec["complete"] = found is not None
        if found is None:
            return None
        manifest, sha = found
        remove_leftover_snapshots(ctx, ops, vm)
        _catalog_completed(ctx, path, manifest, sha)
        rec["adopted"] = True
    log.info("job %s: adopted its complete set at %s", ctx.job.id, path)
    return {**_result(ctx, manifest, sha, route=ops.route), "adopted": True}


def reconcile_set(ctx: JobContext, error: CesoError) -> dict[str, Any] | None:
    """Before ``backup.create`` job ``ctx`` is failed with the fault ``error`` (the broker, SQL, a
    lock, a connection) after its manifest was written: its result (``reconciled``) if its set is
    complete at the target (:func:`completed_set`) and could be cataloged ``completed``, this job's
    snapshot removed from the VM if one is left; else None after the set was discarded (catalog
    ``failed``, files deleted), as any failure discards it.

    A complete set whose catalog write fails for SQL raises that error: nothing may be recorded,
    the delivery comes again (:func:`ceso.jobs.runner.run_job`) and adopts the set (:func:`_adopt`).
    """
    from ceso.backup.targets.registry import open_target

    if not BackupSteps.write_manifest.ran_in(ctx.steps):
        return None  # the handler discarded the set already
    p = ctx.params
    path = set_path(p["vm"], ctx.job.id)
    result: dict[str, Any] | None = None
    found: tuple[Manifest, str] | None = None
    target = open_target(ctx.runtime, p["target"])
    try:
        with ctx.recovery_step(BackupSteps.reconcile_with_host, details={"cause": error.code}) as rec:
            found = completed_set(ctx, target, path)
            rec["complete"] = found is not None
            if found is not None:
                manifest, sha = found
                rec["snapshots_removed"] = _remove_snapshot_left(ctx)
                _catalog_completed(ctx, path, manifest, sha)
                result = {**_result(ctx, manifest, sha, route=ctx.route), "reconciled": error.code}
        if result is None:
            _discard(ctx, target, ctx.job.id, path, error)
    except Exception as exc:
        if sql_unreachable(exc) is not None and result is None and found is not None:
            raise  # complete at the target, kept from the catalog: the next delivery adopts it
        log.warning("job %s: reconciling its set failed: %s", ctx.job.id, exc)
        _discard(ctx, target, ctx.job.id, path, error)
    finally:
        target.close()
    return result


def _remove_snapshot_left(ctx: JobContext) -> int:
    """Remove this job's temporary snapshot if one is still on the VM (how many); best effort: the
    set was read from it already, and a retry of the removal is the host's cleanup of any failure."""
    try:
        ops = ctx.backend()
        return remove_leftover_snapshots(ctx, ops, ops.find(ctx.params["vm"]))
    except CesoError as exc:
        log.warning("job %s: could not check for its snapshot: %s", ctx.job.id, exc.message)
        return 0


def _discard(ctx: JobContext, target: Target, set_id: str, path: str, exc: BaseException) -> None:
    """After a failure: mark the set failed and delete its files (best effort; both are logged).
    A set an attempt completed is left whole."""
    reason = exc.message if isinstance(exc, CesoError) else type(exc).__name__
    try:
        if not catalog.fail_set(ctx.runtime.engine, set_id=set_id, error=reason):
            return
    except Exception:
        log.warning("could not mark backup %s failed", set_id, exc_info=True)
    try:
        target.delete_prefix(path + "/")
    except Exception:
        log.warning(
            "could not delete the files of failed backup %s at target %s", set_id, target.name, exc_info=True
        )
