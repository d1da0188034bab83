"""The backup target interface: a flat namespace of files addressed by relative keys.

Keys are POSIX-style relative paths (``<vm>/<set id>/<file>``). Every
implementation writes a file under a temporary name and makes it visible under
its key only in :meth:`TargetWriter.commit` (rename, or completing an S3
multipart upload), so a reader or ``backup import`` never sees half a file.

Errors: every method raises CesoError subclasses only — NotFoundError for a
missing key, OperationError (code ``target_full`` when out of space) or
TransientError for I/O trouble, HostUnreachableError when the target cannot be
reached or refuses the credentials or host key. Foreign exceptions never escape.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from typing import Any, Protocol

from ceso.errors import InvalidInputError

__all__ = ["PARTIAL_SUFFIX", "Target", "TargetReader", "TargetWriter", "check_key"]

PARTIAL_SUFFIX = ".partial"


def check_key(key: str) -> str:
    """``key`` if it is a clean relative path; InvalidInputError otherwise."""
    norm = posixpath.normpath(key)
    if not key or key.startswith("/") or norm != key or norm.startswith("..") or "\0" in key:
        raise InvalidInputError(f"invalid target key {key!r}")
    return key


class TargetWriter(Protocol):
    """A file being written. Exactly one of :meth:`commit` or :meth:`abort` ends it."""

    def write(self, data: bytes | memoryview, /) -> object: ...

    def commit(self) -> int:
        """Make the file visible under its key; return its size as the target reports it."""
        ...

    def abort(self) -> None:
        """Discard what was written (never raises)."""
        ...


class TargetReader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


class Target(ABC):
    """One configured target. Not thread-safe; open one per job."""

    type: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def open_write(self, key: str) -> TargetWriter:
        """Start writing ``key`` (replacing it on commit)."""

    @abstractmethod
    def open_read(self, key: str) -> TargetReader:
        """Read ``key``; NotFoundError if it does not exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Committed keys under ``prefix`` (a directory-like prefix, e.g. ``vm/``), sorted."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """Size of ``key``, or None if it does not exist."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is fine."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (and leftovers of unfinished writes); return the count."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        self._delete_partials(prefix)
        return len(keys)

    def _delete_partials(self, prefix: str) -> None:  # noqa: B027 - optional hook
        """Remove ``*.partial`` leftovers under ``prefix`` (where the target can see them)."""

    def write_all(self, key: str, body: bytes) -> None:
        """Write ``body`` as ``key`` in one piece (aborted on any failure); OperationError if the
        target reports another size than was written."""
        writer = self.open_write(key)
        try:
            writer.write(body)
            size = writer.commit()
        except BaseException:
            writer.abort()
            raise
        if size != len(body):
            from ceso.errors import OperationError

            raise OperationError(f"target reports {size} bytes for {key}, {len(body)} were written")

    def check(self) -> dict[str, Any]:
        """Write, read back and delete a probe file; return facts about the target."""
        key = ".ceso-check"
        writer = self.open_write(key)
        try:
            writer.write(b"ceso target check\n")
            size = writer.commit()
        except BaseException:
            writer.abort()
            raise
        reader = self.open_read(key)
        try:
            data = reader.read(64)
        finally:
            reader.close()
        self.delete(key)
        if size != 18 or data != b"ceso target check\n":
            from ceso.errors import OperationError

            raise OperationError(f"target {self.name}: a probe file did not read back as written")
        return {"name": self.name, "type": self.type, "writable": True}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
