"""An SFTP server as a backup target (paramiko), with the server's host key pinned.

The pin is the host key's SHA-256 fingerprint as ``ssh-keygen -l`` prints it
(``SHA256:<base64>``); a server presenting any other key is refused before
authentication, so no password or key signature is sent to an impostor.
Credentials (a password or a private key) come from the secret store.
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from ceso.backup.targets.base import PARTIAL_SUFFIX, Target, TargetReader, TargetWriter, check_key
from ceso.errors import (
    AuthenticationError,
    CesoError,
    HostUnreachableError,
    NotFoundError,
    OperationError,
    ThumbprintMismatchError,
)

if TYPE_CHECKING:
    import paramiko

__all__ = ["SftpTarget", "fetch_host_key", "fingerprint"]


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:<base64 without padding>`` of a host key, as OpenSSH shows it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _transport(host: str, port: int, timeout: float) -> paramiko.Transport:
    import paramiko

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        transport = paramiko.Transport(sock)
        transport.start_client(timeout=timeout)
    except (OSError, paramiko.SSHException) as exc:
        raise HostUnreachableError(f"SFTP server {host}:{port} unreachable: {exc}") from exc
    return transport


def fetch_host_key(host: str, port: int, *, timeout: float = 15.0) -> str:
    """The fingerprint of the host key ``host:port`` presents (to show the operator before pinning)."""
    transport = _transport(host, port, timeout)
    try:
        return fingerprint(transport.get_remote_server_key())
    finally:
        transport.close()


def _load_private_key(text: str) -> paramiko.PKey:
    import paramiko

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise CesoError("the stored SFTP private key cannot be read (unsupported type or passphrase)")


def _io(target: str, action: str, exc: BaseException) -> CesoError:
    import errno

    if isinstance(exc, FileNotFoundError) or getattr(exc, "errno", None) == errno.ENOENT:
        return NotFoundError(f"target {target}: {action}: no such file")
    text = str(exc)
    code = (
        "target_full"
        if "space" in text.lower() or getattr(exc, "errno", None) == errno.ENOSPC
        else "target_io"
    )
    return OperationError(f"target {target}: cannot {action}: {text}", code=code)


class _Writer:
    def __init__(self, target: SftpTarget, path: str) -> None:
        self._target = target
        self._path = path
        self._partial = path + PARTIAL_SUFFIX
        with target._errors(f"create {self._partial}"):
            target._makedirs(posixpath.dirname(path))
            self._fh = target._sftp().open(self._partial, "wb")
            self._fh.set_pipelined(True)  # don't wait for an ack per write: throughput of a stream

    def write(self, data: bytes | memoryview) -> None:
        with self._target._errors(f"write {self._partial}"):
            self._fh.write(bytes(data))

    def commit(self) -> int:
        try:
            with self._target._errors(f"finish {self._path}"):
                self._fh.close()  # waits for every pipelined write's status
                sftp = self._target._sftp()
                sftp.posix_rename(self._partial, self._path)
                return int(sftp.stat(self._path).st_size or 0)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        # Best effort by contract: the channel may be gone; a leftover partial is removed
        # when its set is deleted or pruned.
        with suppress(Exception):
            self._fh.close()
        with suppress(Exception):
            self._target._sftp().remove(self._partial)


class SftpTarget(Target):
    """Files under ``root`` on an SFTP server."""

    type = "sftp"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        username: str,
        root: str,
        host_key: str,
        credentials: dict[str, str],
        timeout: float = 30.0,
    ) -> None:
        super().__init__(name)
        self.host, self.port, self.username = host, port, username
        self.root = root.rstrip("/") or "/"
        self.host_key = host_key
        self._credentials = credentials
        self.timeout = timeout
        self._transport: paramiko.Transport | None = None
        self._client: paramiko.SFTPClient | None = None

    def __repr__(self) -> str:  # never show the credentials
        return f"SftpTarget({self.name!r}, {self.username}@{self.host}:{self.port}{self.root})"

    def _sftp(self) -> paramiko.SFTPClient:
        if self._client is not None:
            return self._client
        import paramiko

        transport = _transport(self.host, self.port, self.timeout)
        try:
            seen = fingerprint(transport.get_remote_server_key())
            if seen != self.host_key:
                raise ThumbprintMismatchError(
                    f"target {self.name}: SFTP server {self.host}:{self.port} presents host key {seen}, "
                    f"not the pinned {self.host_key}"
                )
            try:
                if "private_key" in self._credentials:
                    transport.auth_publickey(
                        self.username, _load_private_key(self._credentials["private_key"])
                    )
                else:
                    transport.auth_password(self.username, self._credentials.get("password", ""))
            except paramiko.AuthenticationException as exc:
                raise AuthenticationError(
                    f"target {self.name}: SFTP server refused {self.username}'s credentials"
                ) from exc
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            client.get_channel().settimeout(self.timeout)  # type: ignore[union-attr]
        except BaseException:
            transport.close()
            raise
        self._transport, self._client = transport, client
        return client

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        import paramiko

        try:
            yield
        except CesoError:
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise _io(self.name, action, exc) from exc

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, check_key(key))

    def _makedirs(self, path: str) -> None:
        sftp = self._sftp()
        missing: list[str] = []
        while path not in ("", "/"):
            try:
                sftp.stat(path)
                break
            except FileNotFoundError:
                missing.append(path)
                path = posixpath.dirname(path)
        for directory in reversed(missing):
            try:
                sftp.mkdir(directory)
            except OSError:
                sftp.stat(directory)  # made by a concurrent writer: fine; anything else raises

    def open_write(self, key: str) -> TargetWriter:
        return _Writer(self, self._path(key))

    def open_read(self, key: str) -> TargetReader:
        with self._errors(f"read {key}"):
            fh = self._sftp().open(self._path(key), "rb")
            fh.prefetch()  # pipelined reads ahead of the consumer
            return fh

    def list(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        base = posixpath.join(self.root, prefix) if prefix else self.root

        def walk(directory: str) -> None:
            try:
                entries = self._sftp().listdir_attr(directory)
            except FileNotFoundError:
                return
            for entry in entries:
                full = posixpath.join(directory, entry.filename)
                if stat.S_ISDIR(entry.st_mode or 0):
                    walk(full)
                elif not entry.filename.endswith(PARTIAL_SUFFIX):
                    found.append(posixpath.relpath(full, self.root))

        with self._errors(f"list {prefix or '/'}"):
            walk(base.rstrip("/") or "/")
        return sorted(found)

    def size(self, key: str) -> int | None:
        with self._errors(f"stat {key}"):
            try:
                return int(self._sftp().stat(self._path(key)).st_size or 0)
            except FileNotFoundError:
                return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._errors(f"delete {key}"):
            with suppress(FileNotFoundError):
                self._sftp().remove(path)
            self._prune_dirs(posixpath.dirname(path))

    def _delete_partials(self, prefix: str) -> None:
        base = posixpath.join(self.root, prefix) if prefix else self.root
        with self._errors(f"clean {prefix}"):
            try:
                entries = self._sftp().listdir_attr(base.rstrip("/"))
            except FileNotFoundError:
                return
            for entry in entries:
                if entry.filename.endswith(PARTIAL_SUFFIX):
                    self._sftp().remove(posixpath.join(base, entry.filename))
            self._prune_dirs(base.rstrip("/"))

    def _prune_dirs(self, directory: str) -> None:
        sftp = self._sftp()
        while directory.startswith(self.root + "/"):
            try:
                sftp.rmdir(directory)
            except OSError:
                return
            directory = posixpath.dirname(directory)

    def check(self) -> dict[str, Any]:
        facts = super().check()
        return {
            **facts,
            "url": f"sftp://{self.username}@{self.host}:{self.port}{self.root}",
            "host_key": self.host_key,
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._transport is not None:
            self._transport.close()
        self._client = self._transport = None
