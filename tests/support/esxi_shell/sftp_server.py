"""The SFTP subsystem of an emulated ESXi host: real SFTP on stdin/stdout, ``/vmfs/volumes`` mapped.

sshd runs it as ``Subsystem sftp``. It speaks the protocol with paramiko's
SFTPServer over the process's stdin/stdout (ESXi runs OpenSSH's sftp-server
the same way) and serves only paths under /vmfs/volumes/<datastore>, mapped
like the other emulators; everything else is "permission denied". Like
OpenSSH's sftp-server on VMFS (no hard links), plain rename refuses files;
``posix-rename@openssh.com`` works. Every
request that touches a path is logged (tool "sftp").
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import emulator as emu
import paramiko
from paramiko.sftp import SFTP_OK, SFTP_PERMISSION_DENIED


class _Transport:
    def get_log_channel(self) -> str:
        return "esxi-shell.sftp"

    def get_hexdump(self) -> bool:
        return False


class StdioChannel:
    """Just enough of a paramiko Channel for SFTPServer: bytes in on stdin, out on stdout."""

    def get_transport(self) -> _Transport:
        return _Transport()

    def get_name(self) -> str:
        return "stdio"

    def send(self, data: bytes) -> int:
        return os.write(1, data)

    def recv(self, n: int) -> bytes:
        return os.read(0, n)


def mapped(path: str) -> Path | None:
    if not path.startswith(emu.VOLUMES) or ".." in path.split("/"):
        return None
    datastore, _, rest = path[len(emu.VOLUMES) :].partition("/")
    root = emu.config()["datastores"].get(datastore)
    return Path(root) / rest if root else None


class Handle(paramiko.SFTPHandle):
    pass


class VolumesServer(paramiko.SFTPServerInterface):
    def _path(self, op: str, path: str) -> Path | None:
        emu.log_invocation("sftp", [op, path])
        return mapped(path)

    def canonicalize(self, path: str) -> str:
        return path if path.startswith("/") else "/" + path

    def stat(self, path: str) -> Any:
        real = self._path("stat", path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(real))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    lstat = stat

    def list_folder(self, path: str) -> Any:
        real = self._path("list", path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            out = []
            for name in os.listdir(real):
                attrs = paramiko.SFTPAttributes.from_stat(os.stat(real / name))
                attrs.filename = name
                out.append(attrs)
            return out
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def open(self, path: str, flags: int, attr: Any) -> Any:
        real = self._path("open", path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            fd = os.open(real, flags | getattr(os, "O_BINARY", 0), 0o644)
            mode = "rb" if flags & (os.O_WRONLY | os.O_RDWR) == 0 else ("r+b" if flags & os.O_RDWR else "wb")
            f = os.fdopen(fd, mode)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        handle = Handle(flags)
        handle.filename = str(real)
        handle.readfile = f
        handle.writefile = f
        return handle

    def _simple(self, op: str, path: str, fn: Any) -> int:
        real = self._path(op, path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            fn(real)
        except OSError as exc:
            return int(paramiko.SFTPServer.convert_errno(exc.errno))
        return SFTP_OK

    def remove(self, path: str) -> int:
        return self._simple("remove", path, os.remove)

    def rmdir(self, path: str) -> int:
        return self._simple("rmdir", path, os.rmdir)

    def mkdir(self, path: str, attr: Any) -> int:
        return self._simple("mkdir", path, lambda p: os.mkdir(p, 0o755))

    def chattr(self, path: str, attr: Any) -> int:
        return self._simple(
            "chattr", path, lambda p: os.chmod(p, attr.st_mode & 0o7777) if attr.st_mode else None
        )

    def rename(self, oldpath: str, newpath: str) -> int:
        """Plain SFTP rename as OpenSSH's sftp-server does it on VMFS: ``link()`` then ``unlink()``.

        VMFS has no hard links, so a regular file is refused (EPERM) whether or not the
        target exists; a directory is renamed with rename(2), which never replaces here.
        """
        new, old = self._path("rename-to", newpath), mapped(oldpath)
        if new is None or old is None:
            return SFTP_PERMISSION_DENIED
        if old.is_file():
            return int(paramiko.SFTPServer.convert_errno(errno.EPERM))  # link(): not on VMFS
        if new.exists():
            return int(paramiko.SFTPServer.convert_errno(errno.EEXIST))
        return self._simple("rename", oldpath, lambda p: os.rename(p, new))

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """``posix-rename@openssh.com``: rename(2), replacing a file at ``newpath`` atomically."""
        new = self._path("posix-rename-to", newpath)
        if new is None:
            return SFTP_PERMISSION_DENIED
        return self._simple("posix-rename", oldpath, lambda p: os.replace(p, new))


def main() -> None:
    emu.log_invocation("sftp", ["session"])
    server = paramiko.SFTPServer(StdioChannel(), "sftp", None, VolumesServer)  # type: ignore[arg-type]
    server.start_subsystem("sftp", None, StdioChannel())


if __name__ == "__main__":
    sys.exit(main())
