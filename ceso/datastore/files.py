"""One interface to a host's datastore files (:class:`DatastoreFiles`), whichever route serves it.

The API route's implementation is :class:`ceso.datastore.api.ApiDatastoreFiles`, the SSH route's
:class:`ceso.datastore.sftp.SftpDatastoreFiles`; :func:`ceso.datastore.route.open_files` picks one.
Paths are :class:`~ceso.datastore.paths.DatastoreRef` paths, already cleaned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO, Protocol

__all__ = ["CHUNK", "DatastoreFiles", "Entry", "Progress"]

#: Called with the number of bytes just moved.
Progress = Callable[[int], None]

CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One file or folder of a listing; ``path`` is relative to the datastore's root."""

    path: str
    folder: bool
    size: int | None
    modified: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DatastoreFiles(Protocol):
    """The files of one datastore of one host.

    Every method raises NotFoundError for a missing datastore or path, HostUnreachableError when
    the host does not answer, and leaves nothing of its own behind when it fails.
    """

    route: str
    datastore: str

    def list(self, path: str) -> list[Entry]:
        """The entries of folder ``path`` (``""``: the root), or the one entry of file ``path``."""
        ...

    def stat(self, path: str) -> Entry | None:
        """``path``'s entry, or None if there is nothing there."""
        ...

    def upload(self, source: BinaryIO, size: int, path: str, *, replace: bool, progress: Progress) -> None:
        """Write ``size`` bytes of ``source`` to file ``path``, atomically, replacing a file there
        only with ``replace``.

        The bytes go to ``path`` + :data:`~ceso.datastore.paths.PART_SUFFIX` and are renamed into
        place once all arrived; a failure removes that part file. The caller checked that the
        folder exists and what stands at ``path`` (:func:`ceso.datastore.operations.upload`).
        """
        ...

    def download(self, path: str, sink: BinaryIO, *, progress: Progress) -> int:
        """Copy file ``path`` into ``sink``; the bytes copied."""
        ...

    def remove(self, path: str) -> None:
        """Delete file or folder ``path`` (a folder with everything in it); the caller checked it exists."""
        ...

    def close(self) -> None:
        """Let go of the connection (the host's session stays with its pool)."""
        ...
