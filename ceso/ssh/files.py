"""Datastore files over SFTP: read, write (atomically; over an existing file only when asked), list, delete.

Every path is checked by :func:`ceso.ssh.commands.volume_path` first, so
nothing outside ``/vmfs/volumes/<datastore>/`` is touched. Files are written
through SFTP, never through a shell (``echo``/``cat >``): a guestinfo value of
64 KiB would break a shell line, and no quoting mistake can then run anything.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import posixpath
import re
import stat
from collections.abc import Iterable
from typing import Any

from ceso.errors import ConflictError, InvalidInputError, NotFoundError, OperationError
from ceso.ssh.client import SshClient
from ceso.ssh.commands import VOLUMES, volume_path

__all__ = [
    "exists",
    "extent_bytes",
    "is_zero",
    "make_directory",
    "read_file",
    "remove_tree",
    "rename_into_place",
    "write_file",
    "write_sparse",
]

MAX_TEXT_FILE = 8 * 2**20  # a .vmx or .vmdk descriptor is a few KiB; refuse to slurp a flat disk


def exists(client: SshClient, path: str) -> bool:
    """True if ``path`` exists on the host."""
    path = volume_path(path)

    def check(sftp: Any) -> bool:
        try:
            sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    return bool(client.sftp_call(f"look for {path}", check))


def extent_bytes(client: SshClient, descriptor_path: str) -> int:
    """The bytes of the extent files a ``.vmdk`` descriptor names (what copying the disk reads at most).

    NotFoundError if the descriptor or an extent is missing.
    """
    text = read_file(client, descriptor_path).decode("utf-8", errors="replace")
    folder = posixpath.dirname(volume_path(descriptor_path))
    names = re.findall(r'^\s*RW\s+\d+\s+\S+\s+"([^"]+)"', text, re.MULTILINE)
    paths = [volume_path(name if name.startswith("/") else f"{folder}/{name}") for name in names]

    def sizes(sftp: Any) -> int:
        return sum(int(sftp.stat(p).st_size or 0) for p in paths)

    total: int = client.sftp_call(f"measure {descriptor_path}", sizes)
    return total


def read_file(client: SshClient, path: str, *, limit: int = MAX_TEXT_FILE) -> bytes:
    """The bytes of a (small) file; NotFoundError if missing, OperationError if larger than ``limit``."""
    path = volume_path(path)

    def read(sftp: Any) -> bytes:
        size = sftp.stat(path).st_size or 0
        if size > limit:
            raise OperationError(f"{path} is {size} bytes, more than the {limit} a config file may be")
        with sftp.open(path, "rb") as fh:
            return bytes(fh.read(limit + 1))

    try:
        data: bytes = client.sftp_call(f"read {path}", read)
    except NotFoundError as exc:
        raise NotFoundError(f"no file {path} on host {client.target.host}") from exc
    return data


def rename_into_place(sftp: Any, part: str, path: str, *, replace: bool) -> None:
    """``part`` → ``path`` with the ``posix-rename@openssh.com`` extension (an atomic rename(2)).

    Plain SFTP rename is what OpenSSH's sftp-server implements with ``link()`` +
    ``unlink()``, and VMFS has no hard links, so on ESXi it may fail for a file that
    is fine. A server without the extension gets plain rename instead (which never
    replaces); for ``replace`` the old file is then removed first — not atomic, the
    best such a server allows.
    """
    try:
        sftp.posix_rename(part, path)
    except OSError as exc:
        if "unsupported" not in str(exc).lower():
            raise
        if replace:
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(path)
        sftp.rename(part, path)


def write_file(client: SshClient, path: str, data: bytes, *, mode: int = 0o644, replace: bool = False) -> str:
    """Create ``path`` holding ``data`` (or with ``replace`` put it in place of the file there).

    Returns the SHA-256 of ``data``. Without ``replace`` an existing ``path`` raises
    ConflictError and nothing is written. The bytes go to ``<path>.ceso-part`` first
    and are renamed into place (:func:`rename_into_place`), so the host never sees
    half a file under the real name; on failure the part file is removed and
    ``path`` is as it was.
    """
    path = volume_path(path)
    part = f"{path}.ceso-part"

    def write(sftp: Any) -> None:
        if not replace:
            try:
                sftp.stat(path)
            except FileNotFoundError:
                pass
            else:
                raise ConflictError(f"{path} already exists on host {client.target.host}")
        try:
            with sftp.open(part, "wbx") as fh:
                fh.set_pipelined(True)
                fh.write(data)
            sftp.chmod(part, mode)
            rename_into_place(sftp, part, path, replace=replace)
        except BaseException:
            with contextlib.suppress(OSError):
                sftp.remove(part)
            raise

    client.sftp_call(f"write {path}", write)
    return hashlib.sha256(data).hexdigest()


_ZEROS = bytes(4 << 20)


def is_zero(data: bytes | memoryview) -> bool:
    """True if every byte of ``data`` is zero (compared a few MiB at a time)."""
    view = memoryview(data).cast("B")
    zeros = memoryview(_ZEROS)
    for start in range(0, len(view), len(_ZEROS)):
        part = view[start : start + len(_ZEROS)]
        if part != zeros[: len(part)]:
            return False
    return True


def write_sparse(
    client: SshClient,
    path: str,
    pieces: Iterable[tuple[int, bytes | memoryview]],
    size: int,
    *,
    replace: bool = False,
) -> int:
    """Create ``path`` (or with ``replace`` put it in place of the file there) of ``size`` bytes
    from ``pieces`` (offset, data): the one sparse writer of datastore files over SFTP.

    Only the pieces are written, each at its offset, pipelined; what lies between, and any
    piece of zeros (:func:`is_zero`), is a hole, so a flat disk written this way is
    thin on VMFS. The last byte is written (a zero if no piece covers it) to give the file its
    size without a truncate, which not every SFTP server offers. The bytes go to
    ``<path>.ceso-part`` (a leftover of an earlier attempt is replaced) and are renamed into
    place (:func:`rename_into_place`) once all are written, so the host never sees half a file
    under the real name. Without ``replace`` an existing ``path`` raises ConflictError before
    anything is written; a piece that reaches past ``size`` raises OperationError. On failure
    (also one that ``pieces`` raises) the part file is removed. Returns the bytes written.
    """
    path = volume_path(path)
    part = f"{path}.ceso-part"

    def write(sftp: Any) -> int:
        if not replace:
            try:
                sftp.stat(path)
            except FileNotFoundError:
                pass
            else:
                raise ConflictError(f"{path} already exists on host {client.target.host}")
        with contextlib.suppress(FileNotFoundError):
            sftp.remove(part)
        written, end = 0, 0
        try:
            with sftp.open(part, "wbx") as fh:
                fh.set_pipelined(True)
                for offset, data in pieces:
                    n = len(data)
                    if offset < 0 or offset + n > size:
                        raise OperationError(
                            f"write {path}: bytes {offset}..{offset + n} lie outside its {size}"
                        )
                    if is_zero(data):
                        continue
                    fh.seek(offset)
                    fh.write(data)
                    written += n
                    end = max(end, offset + n)
                if end < size:  # the file ends in a hole: give it its length
                    fh.seek(size - 1)
                    fh.write(b"\0")
            rename_into_place(sftp, part, path, replace=replace)
        except BaseException:
            with contextlib.suppress(OSError):
                sftp.remove(part)
            raise
        return written

    result: int = client.sftp_call(f"write {path}", write)
    return result


def make_directory(client: SshClient, path: str) -> None:
    """Create one directory (its parent must exist); ConflictError if it already exists."""
    path = volume_path(path)

    def mkdir(sftp: Any) -> None:
        try:
            sftp.stat(path)
        except FileNotFoundError:
            sftp.mkdir(path, 0o755)
        else:
            raise ConflictError(f"{path} already exists on host {client.target.host}")

    client.sftp_call(f"create directory {path}", mkdir)


def remove_tree(client: SshClient, path: str) -> int:
    """Delete a VM directory and everything in it; a missing path is fine. Returns files removed.

    Refuses a datastore's root (``/vmfs/volumes/<ds>``): only a directory
    inside a datastore can go.
    """
    path = volume_path(path)
    if posixpath.dirname(path.rstrip("/")) == VOLUMES.rstrip("/"):
        raise InvalidInputError(f"refusing to delete the datastore root {path}")

    def remove(sftp: Any) -> int:
        removed = 0

        def walk(current: str) -> None:
            nonlocal removed
            for entry in sftp.listdir_attr(current):
                child = f"{current}/{entry.filename}"
                if stat.S_ISDIR(entry.st_mode or 0):
                    walk(child)
                    sftp.rmdir(child)
                else:
                    sftp.remove(child)
                    removed += 1

        try:
            walk(path)
            sftp.rmdir(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        return removed

    count: int = client.sftp_call(f"delete {path}", remove)
    return count
