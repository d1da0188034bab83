"""``backup restore --in-place``: write a set's files back over the original, powered-off VM.

The VM keeps its identity (UUID, MACs, guestinfo): only the disk and NVRAM
files are replaced, each at the path it was read from. Disks are staged and
copied thin into place where possible (:func:`_stages`), else written file by file. Refused unless the
VM is powered off and still has exactly the disks the backup recorded (a VM
whose disks changed — new snapshots, added or removed disks — must be restored
as a new VM). A failure part-way leaves the VM with some files restored and
others not: run the restore again; nothing else is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ceso.backends.paths import split_datastore_path
from ceso.backends.vmomi import vim
from ceso.backup.progress import ByteProgress
from ceso.backup.rebuild import Point, file_bytes
from ceso.backup.thin_restore import WAY, WAY_DIRECT, disk_tops, stage_disks, staging
from ceso.backup.upload import upload_file
from ceso.errors import ConflictError, OperationError
from ceso.jobs.retry import retry_host
from ceso.plans import RestoreSteps

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.backup.datastore_files import DatastoreFiles
    from ceso.backup.manifest import Manifest
    from ceso.backup.targets.base import Target
    from ceso.jobs.context import JobContext

__all__ = ["restore_in_place"]


def _check(ops: AnyBackend, vm: Any, manifest: Manifest) -> None:
    props = ops.props(vm, ["runtime.powerState", "config.hardware.device"])
    if props.get("runtime.powerState") != "poweredOff":
        raise ConflictError(
            f"VM {manifest.vm!r} is {props.get('runtime.powerState')}: power it off to restore in place"
        )
    current = [
        str(d.backing.fileName)
        for d in props.get("config.hardware.device") or []
        if isinstance(d, vim().vm.device.VirtualDisk)
    ]
    recorded = [d["file"] for d in manifest.vm_config["disks"]]
    if current != recorded:
        raise ConflictError(
            f"VM {manifest.vm!r} has disks {current}, the backup recorded {recorded} (snapshots or disks "
            "changed since): restore it as a new VM with --as",
            code="disks_changed",
        )


def restore_in_place(
    ctx: JobContext,
    ops: AnyBackend,
    http: DatastoreFiles,
    target: Target,
    manifest: Manifest,
    key: bytes | None,
    chain: Sequence[Point] = (),
) -> dict[str, Any]:
    """Overwrite the original VM's disk and NVRAM files from the set; power on if asked."""
    p = ctx.params
    files = [f for f in manifest.files if f.role in ("descriptor", "extent", "nvram")]
    with ctx.step(RestoreSteps.check_vm, progress=4, details={"vm": manifest.vm}) as rec:

        def check(_try: int) -> tuple[Any, bool]:  # only reads
            vm = ops.find(manifest.vm)
            _check(ops, vm, manifest)
            return vm, _stages(ops, manifest, sum(file_bytes(f) for f in files))

        vm, thin = retry_host(ctx, RestoreSteps.check_vm, check)
        rec["thin"] = thin
    datastores = sorted({split_datastore_path(f.source)[0] for f in files})
    progress = ByteProgress(ctx, sum(file_bytes(f) for f in files), start=8, end=92)
    with ctx.locks(RestoreSteps.lock, vms=[manifest.vm], datastores=datastores):
        with ctx.step(RestoreSteps.check_vm_again, progress=6):
            # Nothing changed while we waited for the locks.
            retry_host(ctx, RestoreSteps.check_vm_again, lambda _try: _check(ops, vm, manifest))
        if thin:
            _replace_disks_thin(ctx, ops, http, target, manifest, key, progress, chain)
            files = [f for f in files if f.role == "nvram"]
        for f in files:
            with ctx.step(
                RestoreSteps.restore_in_place,
                item=f.name,
                details={"dest": f.source, "size": file_bytes(f)},
            ):
                upload_file(
                    ctx,
                    target,
                    http,
                    manifest,
                    f,
                    p["path"],
                    split_datastore_path(f.source),
                    key,
                    progress,
                    chain,
                )
        if not p.get("no_power_on"):
            with ctx.step(RestoreSteps.power_on, progress=96):
                ops.power_on(vm)
    return {
        "backup_id": manifest.id,
        "name": manifest.vm,
        "host": ctx.job.host,
        "in_place": True,
        "files": [f.source for f in manifest.files if f.role in ("descriptor", "extent", "nvram")],
        "power_state": "poweredOff" if p.get("no_power_on") else "poweredOn",
        "restored_bytes": progress.done,
        "route": ops.route,
        "disks_written": WAY[ops.route] if thin else WAY_DIRECT,
    }


def _stages(ops: AnyBackend, manifest: Manifest, need: int) -> bool:
    """Whether the disks are staged and copied thin into place (:mod:`ceso.backup.thin_restore`).

    Always over SSH (the staged copy is sparse); through the API when the VM's datastore holds the
    full-size staged copy beside the disks. A copy into place makes one disk of a chain of
    snapshot deltas, so a set holding chains is written file by file through the API, and
    refused over SSH (restore it as a new VM).
    """
    chained = [f.name for f in manifest.files if f.role == "descriptor" and (f.link or 0) > 0]
    if ops.route != "ssh":
        datastore = split_datastore_path(manifest.vm_config["vmx_path"])[0]
        return not chained and getattr(ops, "free_space")(datastore) >= need  # noqa: B009
    if chained:
        raise OperationError(
            f"backup {manifest.id} holds disks with snapshot chains; over SSH they cannot be restored in "
            "place: restore it as a new VM with --as",
            code="not_supported_over_ssh",
        )
    return True


def _replace_disks_thin(
    ctx: JobContext,
    ops: AnyBackend,
    files: DatastoreFiles,
    target: Target,
    manifest: Manifest,
    key: bytes | None,
    progress: ByteProgress,
    chain: Sequence[Point] = (),
) -> None:
    """Stage every disk in a folder beside the VM's .vmx, then replace each disk with a thin copy
    of its staged one (delete the old disk, copy the staged one thin: ``vmkfstools -U`` and
    ``-i … -d thin`` over SSH, ``DeleteVirtualDisk_Task`` and ``CopyVirtualDisk_Task`` through the
    API), keeping its path."""
    disk_files = [f for f in manifest.files if f.role in ("descriptor", "extent")]
    vmx_ds, vmx_path = split_datastore_path(manifest.vm_config["vmx_path"])
    folder = vmx_path.rsplit("/", 1)[0]
    tops = disk_tops(disk_files)
    sources = {f.name: f.source for f in disk_files}
    with staging(ctx, ops, vmx_ds, folder) as staged:
        stage_disks(
            ctx, target, files, manifest, disk_files, ctx.params["path"], vmx_ds, staged, key, progress, chain
        )
        for i in sorted(tops):
            dest = sources[tops[i]]
            with ctx.step(
                RestoreSteps.replace_disk_thin, item=f"{i + 1}/{len(tops)} thin", details={"disk": dest}
            ):
                getattr(ops, "delete_disk")(dest)  # noqa: B009 - both routes have it; the protocol does not
                ops.copy_disk(f"[{vmx_ds}] {staged}/{tops[i]}", dest)
