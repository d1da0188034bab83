"""Datastore files over SFTP, the SSH route: everything under ``/vmfs/volumes/<datastore>/``.

Every path goes through :func:`ceso.ssh.commands.datastore_file` (inside the datastore, no
``..``) before SFTP sees it; nothing runs in a shell.
"""

from __future__ import annotations

import contextlib
import posixpath
import stat
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from ceso.datastore.files import CHUNK, Entry, Progress
from ceso.datastore.paths import PART_SUFFIX
from ceso.errors import InvalidInputError, NotFoundError, OperationError
from ceso.ssh.commands import VOLUMES, datastore_file
from ceso.ssh.files import rename_into_place

if TYPE_CHECKING:
    from ceso.ssh.client import SshClient

__all__ = ["SftpDatastoreFiles"]


class SftpDatastoreFiles:
    """The files of ``datastore`` on the host of ``client`` (see :class:`ceso.datastore.files.DatastoreFiles`)."""

    route = "ssh"

    def __init__(self, client: SshClient, datastore: str) -> None:
        self.client = client
        self.datastore = datastore
        self.root = f"{VOLUMES}{datastore}"
        if "/" in datastore or datastore in (".", ".."):
            raise InvalidInputError(f"datastore name {datastore!r} is not usable in a path")

    def _abs(self, path: str) -> str:
        return datastore_file(self.datastore, path) if path else self.root

    def _where(self, path: str) -> str:
        return f"{f'[{self.datastore}] {path}'.rstrip()} on host {self.client.target.host}"

    def _entry(self, path: str, attrs: Any) -> Entry:
        folder = stat.S_ISDIR(attrs.st_mode or 0)
        modified = datetime.fromtimestamp(attrs.st_mtime, UTC).isoformat() if attrs.st_mtime else None
        return Entry(path, folder, None if folder else int(attrs.st_size or 0), modified)

    def _root_exists(self, sftp: Any) -> None:
        try:
            sftp.stat(self.root)
        except FileNotFoundError:
            raise NotFoundError(f"host {self.client.target.host} has no datastore {self.datastore}") from None

    def stat(self, path: str) -> Entry | None:
        target = self._abs(path)

        def look(sftp: Any) -> Entry | None:
            self._root_exists(sftp)
            try:
                return self._entry(path, sftp.stat(target))
            except FileNotFoundError:
                return None

        found: Entry | None = self.client.sftp_call(f"look for {target}", look)
        return found

    def list(self, path: str) -> list[Entry]:
        entry = self.stat(path)
        if entry is None:
            raise NotFoundError(f"no {self._where(path)}")
        if not entry.folder:
            return [entry]
        target = self._abs(path)

        def read(sftp: Any) -> list[Entry]:
            return [
                self._entry(posixpath.join(path, a.filename) if path else a.filename, a)
                for a in sftp.listdir_attr(target)
                if not a.filename.endswith(PART_SUFFIX)
            ]

        entries: list[Entry] = self.client.sftp_call(f"list {target}", read)
        return sorted(entries, key=lambda e: e.path)

    def upload(self, source: BinaryIO, size: int, path: str, *, replace: bool, progress: Progress) -> None:
        target = self._abs(path)
        part = target + PART_SUFFIX

        def write(sftp: Any) -> None:
            sent = 0
            try:
                with sftp.open(part, "wb") as fh:
                    fh.set_pipelined(True)
                    while chunk := source.read(CHUNK):
                        fh.write(chunk)
                        sent += len(chunk)
                        progress(len(chunk))
                if sent != size:
                    raise OperationError(
                        f"the local file changed while it was sent ({sent} bytes, not {size})"
                    )
                rename_into_place(sftp, part, target, replace=replace)
            except BaseException:
                with contextlib.suppress(OSError):
                    sftp.remove(part)
                raise

        self.client.sftp_call(f"upload {target}", write)

    def download(self, path: str, sink: BinaryIO, *, progress: Progress) -> int:
        target = self._abs(path)

        def read(sftp: Any) -> int:
            copied = 0
            size = sftp.stat(target).st_size or 0  # given to prefetch, which would otherwise fstat
            with sftp.open(target, "rb") as fh:
                fh.prefetch(size)
                while chunk := fh.read(CHUNK):
                    sink.write(chunk)
                    copied += len(chunk)
                    progress(len(chunk))
            return copied

        try:
            copied: int = self.client.sftp_call(f"download {target}", read)
        except NotFoundError:
            raise NotFoundError(f"no {self._where(path)}") from None
        return copied

    def remove(self, path: str) -> None:
        target = self._abs(path)
        entry = self.stat(path)
        if entry is not None and entry.folder:
            from ceso.ssh.files import remove_tree

            remove_tree(self.client, target)
            return
        self.client.sftp_call(f"delete {target}", lambda sftp: sftp.remove(target))

    def close(self) -> None:
        return None  # the connection belongs to the runtime's pool
