"""``backup.create``: one VM, streamed from its datastore to a target as a set with a manifest.

Steps: inspect → lock the VM and a slot of the target → catalog ``pending`` →
copy .vmx/.nvram → snapshot (hot) or shutdown (cold on a running VM) → copy the
disks → remove the snapshot / power back on (always) → write the manifest →
confirm every size at the target → catalog ``completed``.

On any failure the set is marked ``failed`` and its files are deleted from the
target (best effort); a retried delivery of the job (same set id) first removes
its earlier snapshot and files. Never leaves a ``completed`` entry for a set
whose files are not all at the target.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ceso
from ceso.backup import catalog
from ceso.backup.datastore_files import DatastoreFiles, datastore_files
from ceso.backup.manifest import MANIFEST_NAME, Manifest, ManifestFile
from ceso.backup.pipeline import store_stream
from ceso.backup.progress import ByteProgress
from ceso.backup.quiesce import remove_leftover_snapshots, shut_down, temporary_snapshot
from ceso.backup.vmsource import BACKUP_PROPERTIES, BackupPlan, SourceFile, plan_backup
from ceso.db.backup_models import BackupSet
from ceso.db.types import utcnow
from ceso.errors import OperationError
from ceso.metrics.record import observe_backup_bytes
from ceso.operations.leftovers import left_off

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.backup.targets.base import Target
    from ceso.jobs.context import JobContext

__all__ = ["run_backup", "set_path"]

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
    remote = http.open_read(source.datastore, source.path)
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
    )


@contextmanager
def _target_slot(ctx: JobContext, target: str) -> Iterator[Any]:
    """One of ``backups.target_concurrency`` slots of the target, renewed while held, always released."""
    from ceso.locks import target_lock_name

    settings = ctx.runtime.settings
    with ctx.step("target slot", details={"target": target}) as rec:
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
    ops = ctx.backend()
    http = datastore_files(ops)
    with ctx.step("inspect VM", progress=2, details={"vm": p["vm"]}) as rec:
        vm = ops.find(p["vm"])
        plan = plan_backup(http, p["vm"], ops.props(vm, BACKUP_PROPERTIES))
        running = plan.power_state != "poweredOff"
        # An earlier attempt that shut the VM down and died before powering it back on: the VM
        # was running before this job, so this attempt powers it back on afterwards.
        was_running = running or left_off(ctx.earlier_steps, "shut down", "power back on")
        kind = "hot" if running and spec.mode != "cold" else "cold"
        sizes = {f.name: http.size(f.datastore, f.path) for f in plan.files}
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
    }
    target = open_target(ctx.runtime, p["target"])
    set_id, path = ctx.job.id, set_path(p["vm"], ctx.job.id)
    try:
        with ctx.locks(vms=[p["vm"]]), _target_slot(ctx, p["target"]) as slot:
            with ctx.step("catalog pending", progress=5, details={"set_id": set_id, "path": path}):
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
                ctx, ops, vm, plan, kind, was_running, target, http, path, opts, enc_key, progress, manifest
            )
            progress.report()
            manifest_sha = _finish(ctx, target, path, manifest)
    except BaseException as exc:
        _discard(ctx, target, set_id, path, exc)
        raise
    finally:
        target.close()
    return {
        "backup_id": set_id,
        "vm": p["vm"],
        "target": p["target"],
        "kind": kind,
        "route": ops.route,
        "files": len(manifest.files),
        "logical_bytes": manifest.logical_bytes,
        "stored_bytes": manifest.stored_bytes,
        "manifest_sha256": manifest_sha,
    }


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
) -> None:
    from ceso.backup.codec import suffix_for

    suffix = suffix_for(opts["compression"]) + (".enc" if enc_key else "")

    def copy(source: SourceFile) -> None:
        with ctx.step(f"copy {source.name}", details={"source": source.source, "role": source.role}):
            key = f"{path}/{source.name}{suffix}"
            copied = _copy(target, http, source, key, opts, enc_key, progress)
            manifest.files.append(copied)
            observe_backup_bytes(ctx.job.host, target.name, "read", copied.logical_bytes)
            observe_backup_bytes(ctx.job.host, target.name, "stored", copied.stored_bytes)

    config_files = [f for f in plan.files if f.role in ("vmx", "nvram")]
    disk_files = [f for f in plan.files if f.role not in ("vmx", "nvram")]
    for source in config_files:  # before the snapshot: afterwards the .vmx names the snapshot's delta disks
        copy(source)
    quiet: contextlib.AbstractContextManager[None]
    if kind == "hot":
        quiet = temporary_snapshot(ctx, ops, vm, quiesce=plan.tools_running)
    elif was_running:
        quiet = shut_down(ctx, ops, vm, timeout_s=ctx.runtime.settings.backups.shutdown_timeout_s)
    else:
        quiet = contextlib.nullcontext()
    with quiet:
        for source in disk_files:
            copy(source)


def _finish(ctx: JobContext, target: Target, path: str, manifest: Manifest) -> str:
    import hashlib

    with ctx.step("write manifest", progress=92):
        manifest.completed_at = utcnow().isoformat()
        body = manifest.to_json()
        writer = target.open_write(f"{path}/{MANIFEST_NAME}")
        try:
            writer.write(body)
            size = writer.commit()
        except BaseException:
            writer.abort()
            raise
        if size != len(body):
            raise OperationError(f"target reports {size} bytes for the manifest, {len(body)} were written")
    with ctx.step("confirm sizes at target", progress=96) as rec:
        for f in manifest.files:
            seen = target.size(f"{path}/{f.stored_name}")
            if seen != f.stored_bytes:
                raise OperationError(
                    f"{f.stored_name}: target reports {seen} bytes, expected {f.stored_bytes}"
                )
        rec["files"] = len(manifest.files) + 1
    sha = hashlib.sha256(body).hexdigest()
    with ctx.step("catalog completed", progress=99):
        catalog.complete_set(ctx.runtime.engine, manifest=manifest, manifest_sha256=sha)
    return sha


def _discard(ctx: JobContext, target: Target, set_id: str, path: str, exc: BaseException) -> None:
    """After a failure: mark the set failed and delete its files (best effort; both are logged)."""
    from ceso.errors import CesoError

    reason = exc.message if isinstance(exc, CesoError) else type(exc).__name__
    try:
        catalog.fail_set(ctx.runtime.engine, set_id=set_id, error=reason)
    except Exception:
        log.warning("could not mark backup %s failed", set_id, exc_info=True)
    try:
        target.delete_prefix(path + "/")
    except Exception:
        log.warning(
            "could not delete the files of failed backup %s at target %s", set_id, target.name, exc_info=True
        )
