"""``backup restore --in-place``: write a set's files back over the original, powered-off VM.

The VM keeps its identity (UUID, MACs, guestinfo): only the disk and NVRAM
files are overwritten, each at the path it was read from. Refused unless the
VM is powered off and still has exactly the disks the backup recorded (a VM
whose disks changed — new snapshots, added or removed disks — must be restored
as a new VM). A failure part-way leaves the VM with some files restored and
others not: run the restore again; nothing else is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ceso.backends.paths import split_datastore_path
from ceso.backends.vmomi import vim
from ceso.backup.progress import ByteProgress
from ceso.backup.thin_restore import WAY, WAY_DIRECT, disk_tops, stage_disks, staging
from ceso.backup.upload import upload_file
from ceso.errors import ConflictError, OperationError

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
) -> dict[str, Any]:
    """Overwrite the original VM's disk and NVRAM files from the set; power on if asked."""
    p = ctx.params
    with ctx.step("check VM", progress=4, details={"vm": manifest.vm}):
        vm = ops.find(manifest.vm)
        _check(ops, vm, manifest)
        if ops.route == "ssh":
            _refuse_chains(manifest)
    files = [f for f in manifest.files if f.role in ("descriptor", "extent", "nvram")]
    datastores = sorted({split_datastore_path(f.source)[0] for f in files})
    progress = ByteProgress(ctx, sum(f.logical_bytes for f in files), start=8, end=92)
    with ctx.locks(vms=[manifest.vm], datastores=datastores):
        with ctx.step("check VM again", progress=6):
            _check(ops, vm, manifest)  # nothing changed while we waited for the locks
        if ops.route == "ssh":
            _replace_disks_thin(ctx, ops, http, target, manifest, key, progress)
            files = [f for f in files if f.role == "nvram"]
        for f in files:
            with ctx.step(f"restore {f.name}", details={"dest": f.source, "size": f.logical_bytes}):
                upload_file(
                    ctx, target, http, manifest, f, p["path"], split_datastore_path(f.source), key, progress
                )
        if not p.get("no_power_on"):
            with ctx.step("power on", progress=96):
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
        "disks_written": WAY["ssh"] if ops.route == "ssh" else WAY_DIRECT,
    }


def _refuse_chains(manifest: Manifest) -> None:
    """Over SSH each disk is copied into place whole (``vmkfstools -i``), which cannot rebuild a
    chain of snapshot deltas at their paths: such a set is restored as a new VM instead."""
    chained = [f.name for f in manifest.files if f.role == "descriptor" and (f.link or 0) > 0]
    if chained:
        raise OperationError(
            f"backup {manifest.id} holds disks with snapshot chains; over SSH they cannot be restored in "
            "place: restore it as a new VM with --as",
            code="not_supported_over_ssh",
        )


def _replace_disks_thin(
    ctx: JobContext,
    ops: AnyBackend,
    files: DatastoreFiles,
    target: Target,
    manifest: Manifest,
    key: bytes | None,
    progress: ByteProgress,
) -> None:
    """Stage every disk in a folder beside the VM's .vmx, then replace each disk with a thin copy
    of its staged one (``vmkfstools -U`` of the old, ``-i … -d thin`` of the new), keeping its path."""
    disk_files = [f for f in manifest.files if f.role in ("descriptor", "extent")]
    vmx_ds, vmx_path = split_datastore_path(manifest.vm_config["vmx_path"])
    folder = vmx_path.rsplit("/", 1)[0]
    tops = disk_tops(disk_files)
    sources = {f.name: f.source for f in disk_files}
    with staging(ctx, ops, vmx_ds, folder) as staged:
        stage_disks(
            ctx, target, files, manifest, disk_files, ctx.params["path"], vmx_ds, staged, key, progress
        )
        for i in sorted(tops):
            dest = sources[tops[i]]
            with ctx.step(f"replace disk {i + 1}/{len(tops)} thin", details={"disk": dest}):
                getattr(ops, "delete_disk")(dest)  # noqa: B009 - the SSH route's vmkfstools -U
                ops.copy_disk(f"[{vmx_ds}] {staged}/{tops[i]}", dest)
