"""How a backup or restore reaches a host's datastore files, per route: :func:`datastore_files`.

One seam, two ways. On the API route the files go over the host's ``/folder``
HTTP service with the API session's cookie (:class:`ceso.backup.datastore_http.DatastoreHttp`).
On the SSH route (a free-licensed host) they go over SSH (:class:`SshDatastoreFiles`):
``cat`` on an exec channel to read, SFTP to write. Either way a read cut by a lost
connection resumes from the byte it reached (a job's :func:`ceso.jobs.retry.read_resume`). Backup and restore code holds a
:class:`DatastoreFiles` and never asks which it is; the route's ``way`` is written
into the job's result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ceso.errors import OperationError
from ceso.ssh import commands as cmd

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend, Recorder
    from ceso.jobs.retry import ReadResume
    from ceso.ssh.client import SshClient

__all__ = ["DatastoreFiles", "ReadStream", "SshDatastoreFiles", "datastore_files"]


class ReadStream(Protocol):
    """One datastore file being read: ``size`` bytes, then ``readinto`` returns 0."""

    size: int

    def readinto(self, buffer: bytearray | memoryview, /) -> int: ...
    def close(self) -> None: ...


class DatastoreFiles(Protocol):
    """Reads and writes of whole datastore files ``[datastore] path`` on one host."""

    def size(self, datastore: str, path: str) -> int:
        """The file's size; NotFoundError if it is missing."""
        ...

    def open_read(self, datastore: str, path: str) -> ReadStream:
        """Open the file for reading; NotFoundError if it is missing."""
        ...

    def upload(self, datastore: str, path: str, size: int, chunks: Iterable[bytes | memoryview]) -> None:
        """Write exactly ``size`` bytes from ``chunks`` as the file (replacing it); TransientError if the
        connection broke (the caller may send the file again)."""
        ...


class SshDatastoreFiles:
    """:class:`DatastoreFiles` over SSH (:mod:`ceso.ssh.stream`); each transfer is recorded first."""

    way = "ssh"

    def __init__(self, client: SshClient, record: Recorder, resume: ReadResume | None = None) -> None:
        self.client = client
        self.record = record
        self.resume = resume

    def size(self, datastore: str, path: str) -> int:
        from ceso.ssh.stream import file_size

        return file_size(self.client, cmd.datastore_file(datastore, path))

    def open_read(self, datastore: str, path: str) -> ReadStream:
        from ceso.ssh.stream import SshFileReader

        target = cmd.datastore_file(datastore, path)
        size = self.size(datastore, path)
        self.record("ssh", {"command": cmd.cat_file(target).line, "bytes": size})
        return SshFileReader(self.client, target, size=size, resume=self.resume)

    def upload(self, datastore: str, path: str, size: int, chunks: Iterable[bytes | memoryview]) -> None:
        from ceso.ssh.stream import upload

        target = cmd.datastore_file(datastore, path)
        self.record("sftp.write", {"path": target, "bytes": size, "replace": True})
        upload(self.client, target, size, chunks, replace=True)


def datastore_files(ops: AnyBackend, resume: ReadResume | None = None) -> DatastoreFiles:
    """The :class:`DatastoreFiles` of the route ``ops`` takes; OperationError for a backend with neither.

    ``resume`` (a job's :func:`ceso.jobs.retry.read_resume`) resumes reads cut by a lost connection.
    """
    if ops.route == "api":
        from ceso.backup.datastore_http import DatastoreHttp

        return DatastoreHttp(getattr(ops, "client"), resume=resume)  # noqa: B009 - ApiVmBackend's EsxiClient
    if ops.route == "ssh":
        return SshDatastoreFiles(getattr(ops, "client"), getattr(ops, "record"), resume)  # noqa: B009
    raise OperationError(f"backups need datastore file access, which route {ops.route!r} does not give")
