"""A directory as a backup target (local disk or a mounted NFS/SMB share)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any, BinaryIO

from ceso.backup.targets.base import PARTIAL_SUFFIX, Target, TargetReader, TargetWriter, check_key
from ceso.errors import NotFoundError, OperationError

__all__ = ["LocalTarget"]


def _io_error(target: str, action: str, exc: OSError) -> OperationError:
    code = "target_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "target_io"
    return OperationError(f"target {target}: cannot {action}: {exc.strerror or exc}", code=code)


class _Writer:
    def __init__(self, target: LocalTarget, final: Path) -> None:
        self._target = target
        self._final = final
        self._partial = final.with_name(final.name + PARTIAL_SUFFIX)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO = self._partial.open("wb")
        except OSError as exc:
            raise _io_error(target.name, f"create {self._partial}", exc) from exc

    def write(self, data: bytes | memoryview) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise _io_error(self._target.name, f"write {self._partial}", exc) from exc

    def commit(self) -> int:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # the bytes are on disk before the name says "complete"
            self._fh.close()
            os.replace(self._partial, self._final)
            dir_fd = os.open(self._final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return self._final.stat().st_size
        except OSError as exc:
            self.abort()
            raise _io_error(self._target.name, f"finish {self._final}", exc) from exc

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self._partial.unlink(missing_ok=True)


class LocalTarget(Target):
    """Files under ``root``; keys map to paths below it."""

    type = "local"

    def __init__(self, name: str, root: str | Path) -> None:
        super().__init__(name)
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def open_write(self, key: str) -> TargetWriter:
        return _Writer(self, self._path(key))

    def open_read(self, key: str) -> TargetReader:
        path = self._path(key)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"target {self.name}: no file {key}") from None
        except OSError as exc:
            raise _io_error(self.name, f"read {path}", exc) from exc

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if not f.endswith(PARTIAL_SUFFIX):
                    keys.append(Path(dirpath, f).relative_to(self.root).as_posix())
        return sorted(keys)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _io_error(self.name, f"delete {path}", exc) from exc
        self._prune_dirs(path.parent)

    def _delete_partials(self, prefix: str) -> None:
        base = self.root / prefix if prefix else self.root
        leftovers = list(base.rglob(f"*{PARTIAL_SUFFIX}")) if base.is_dir() else []  # before pruning dirs
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
            self._prune_dirs(leftover.parent)

    def _prune_dirs(self, directory: Path) -> None:
        """Remove emptied set and VM directories, never the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def check(self) -> dict[str, Any]:
        if not self.root.is_dir():
            raise NotFoundError(f"target {self.name}: directory {self.root} does not exist")
        facts = super().check()
        st = os.statvfs(self.root)
        return {**facts, "path": str(self.root), "free_bytes": st.f_bavail * st.f_frsize}
