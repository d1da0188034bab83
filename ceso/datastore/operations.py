"""What the ``datastore`` commands do: list, upload, download and remove files of a host's datastore.

They run in the caller's process (the bytes are the caller's local files) through the host's
route (:func:`ceso.datastore.route.open_files`); they are not jobs. Each takes a
:class:`~ceso.datastore.paths.DatastoreRef` whose path is already held inside its datastore.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from typing import TYPE_CHECKING

from ceso.datastore.files import Entry, Progress
from ceso.datastore.paths import PART_SUFFIX, DatastoreRef
from ceso.datastore.route import open_files
from ceso.errors import ConflictError, InvalidInputError, NotFoundError
from ceso.input_files import require_regular_file

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["download", "list_files", "remove", "upload"]


def list_files(runtime: Runtime, ref: DatastoreRef) -> list[Entry]:
    """The entries of folder ``ref`` (or the one entry of a file); NotFoundError if missing."""
    files = open_files(runtime, ref.host, ref.datastore)
    try:
        return files.list(ref.path)
    finally:
        files.close()


def upload(
    runtime: Runtime,
    local: str,
    ref: DatastoreRef,
    *,
    replace: bool,
    progress: Progress,
    dry_run: bool = False,
) -> int:
    """Copy regular file ``local`` to ``ref`` (atomically: a part file renamed into place); its size.

    Refused before a byte is sent: InvalidInputError if ``local`` is not a regular file,
    ConflictError if ``ref`` is a folder or (without ``replace``) a file, NotFoundError if its
    folder does not exist. ``dry_run`` stops after these checks.
    """
    path = require_regular_file(local, "file to upload")
    with open(path, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        files = open_files(runtime, ref.host, ref.datastore)
        try:
            existing = files.stat(ref.path)
            if existing is not None and (existing.folder or not replace):
                what = "a folder" if existing.folder else "a file (--force replaces it)"
                raise ConflictError(f"{ref} is already {what}")
            parent = posixpath.dirname(ref.path)
            folder = files.stat(parent)
            if folder is None or not folder.folder:
                raise NotFoundError(f"no folder {DatastoreRef(ref.host, ref.datastore, parent)}")
            if not dry_run:
                files.upload(source, size, ref.path, replace=replace, progress=progress)
        finally:
            files.close()
    return size


def download(
    runtime: Runtime, ref: DatastoreRef, local: str, *, replace: bool, progress: Progress
) -> tuple[str, int]:
    """Copy file ``ref`` to ``local`` (a file, or a folder to put it in); (the file written, its size).

    The bytes go to ``<local>.ceso-part`` and replace ``local`` once complete; a failure removes
    the part file. ConflictError if ``local`` exists and not ``replace``.
    """
    dest = os.path.expanduser(local)
    if os.path.isdir(dest):
        dest = os.path.join(dest, ref.path.rsplit("/", 1)[-1])
    if os.path.lexists(dest):
        if not replace:
            raise ConflictError(f"{dest} already exists (--force replaces it)")
        if not stat.S_ISREG(os.stat(dest).st_mode):
            raise InvalidInputError(f"{dest} is not a regular file; it is not replaced")
    files = open_files(runtime, ref.host, ref.datastore)
    entry = files.stat(ref.path)
    if entry is not None and entry.folder:
        files.close()
        raise InvalidInputError(f"{ref} is a folder; download takes a file")
    part = dest + PART_SUFFIX
    try:
        with open(part, "wb") as sink:
            size = files.download(ref.path, sink, progress=progress)
        os.replace(part, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise
    finally:
        files.close()
    return dest, size


def remove(runtime: Runtime, ref: DatastoreRef, *, dry_run: bool = False) -> Entry:
    """Delete file or folder ``ref`` (``dry_run``: only check); what was (or would be) deleted.

    ConflictError (``path_of_vm``) if it belongs to a VM registered on the host
    (:func:`ceso.datastore.owners.owner_of`), NotFoundError if there is nothing there.
    """
    from sqlmodel import Session

    from ceso.datastore.owners import owner_of
    from ceso.esxi.inventory import list_vms
    from ceso.hosts.registry import get_host

    with Session(runtime.engine) as session:
        host = get_host(session, ref.host)
    owner = owner_of(ref.path, ref.datastore, list_vms(runtime.client(host)))
    if owner is not None:
        raise ConflictError(
            f"{ref} belongs to VM {owner.name} registered on host {ref.host}; "
            f"`ceso vm delete {owner.name}` removes a VM with its files",
            code="path_of_vm",
        )
    files = open_files(runtime, ref.host, ref.datastore)
    try:
        entry = files.stat(ref.path)
        if entry is None:
            raise NotFoundError(f"no {ref}")
        if not dry_run:
            files.remove(ref.path)
    finally:
        files.close()
    return entry
