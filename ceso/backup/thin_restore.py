"""Writing a set's disks back so that a thin disk comes back thin, on either route.

A disk written byte for byte through ``/folder`` is as large on a VMFS datastore
as its capacity. So the set's files are first streamed (decoded and checked,
:func:`ceso.backup.upload.upload_file`) into a staging folder inside the VM's
folder, and the host then copies each disk from there into place, thin
(:meth:`ceso.backends.protocol.VmBackend.copy_disk`: ``vmkfstools -i STAGED DEST -d thin``
over SSH, ``VirtualDiskManager.CopyVirtualDisk_Task`` with a thin spec through the API),
allocating no block the guest never wrote; the staging folder is removed
afterwards, always. A chain of descriptors (a set taken of a VM with snapshots)
is consolidated into one disk by that copy. The staged copy is sparse over SFTP
but full through ``/folder``, so on the API route a restore stages only where the
datastore holds both copies, and otherwise writes the disks in place
(:data:`WAY_DIRECT`); the job's result says which.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ceso.backends.paths import datastore_path
from ceso.backup.rebuild import Point, file_bytes
from ceso.backup.upload import upload_file
from ceso.jobs.cleanup import always
from ceso.plans import RestoreSteps

if TYPE_CHECKING:
    from ceso.backup.datastore_files import DatastoreFiles
    from ceso.backup.manifest import Manifest, ManifestFile
    from ceso.backup.progress import ByteProgress
    from ceso.backup.targets.base import Target
    from ceso.jobs.context import JobContext

__all__ = ["STAGING", "WAY", "WAY_DIRECT", "disk_tops", "stage_disks", "staging"]

STAGING = "ceso-restore-staging"
#: What a restore's result says of how its disks were written: staged and copied thin, per route ...
WAY = {
    "ssh": "staged over SFTP, copied thin by vmkfstools -i -d thin",
    "api": "staged over /folder, copied thin by VirtualDiskManager.CopyVirtualDisk_Task",
}
#: ... or written at their place through /folder: thin disks are inflated (an API restore in place,
#: or as a new VM where the datastore cannot hold a staged copy beside the thin one).
WAY_DIRECT = "written over /folder at their place (thin disks are inflated)"


def disk_tops(disk_files: list[ManifestFile]) -> dict[int, str]:
    """Each disk's top descriptor name (the files are in chain order, base first)."""
    tops: dict[int, str] = {}
    for f in disk_files:
        if f.role == "descriptor" and f.disk is not None:
            tops[f.disk] = f.name
    return tops


@contextmanager
def staging(ctx: JobContext, ops: Any, datastore: str, folder: str) -> Iterator[str]:
    """A fresh staging folder ``folder/ceso-restore-staging`` for the body, removed afterwards, always
    (a leftover of an earlier attempt is removed first). Yields its path relative to the datastore."""
    relative = f"{folder}/{STAGING}"
    path = datastore_path(datastore, relative)
    with ctx.step(RestoreSteps.make_staging, details={"path": path}):
        ops.delete_path(path)
        ops.make_directory(path)
    with always(ctx, RestoreSteps.remove_staging, lambda: ops.delete_path(path)):
        yield relative


def stage_disks(
    ctx: JobContext,
    target: Target,
    files: DatastoreFiles,
    manifest: Manifest,
    disk_files: list[ManifestFile],
    set_path: str,
    datastore: str,
    staged: str,
    key: bytes | None,
    progress: ByteProgress,
    chain: Sequence[Point] = (),
) -> None:
    """Stream each disk file of the set into the staging folder ``staged`` (decoded, checked); a
    disk of an incremental is rebuilt from ``chain`` (see :func:`ceso.backup.upload.upload_file`)."""
    for f in disk_files:
        with ctx.step(
            RestoreSteps.restore_file, item=f.name, details={"size": file_bytes(f), "staged": True}
        ):
            upload_file(
                ctx,
                target,
                files,
                manifest,
                f,
                set_path,
                (datastore, f"{staged}/{f.name}"),
                key,
                progress,
                chain,
            )
