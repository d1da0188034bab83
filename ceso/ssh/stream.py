"""Bulk datastore file transfers over SSH: a read stream and an upload, for backups and restores.

Reads are ``cat PATH`` on an SSH exec channel, its standard output read straight
off the channel (:class:`SshFileReader`): on a free-licensed host the API cannot
serve ``/folder`` to a read-only session's jobs reliably, and this is the
fastest path that works there — faster than SFTP with prefetch, which pays a
request per 32 KiB (figures in docs/benchmarks.md). Uploads go through SFTP with
pipelined writes (:func:`upload`, over :func:`ceso.ssh.files.write_sparse`, the
one sparse writer): no shell line carries data, runs of zeros are skipped (the
file stays sparse), and the file appears under its name only once complete.

Errors are CesoErrors: NotFoundError for a missing file, TransientError for a
connection that broke or stalled, OperationError for a file whose size changed
under the read or a command that failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from ceso.errors import NotFoundError, OperationError, TransientError
from ceso.ssh import commands as cmd
from ceso.ssh.client import SshClient
from ceso.ssh.files import write_sparse

__all__ = ["MAX_PACKET", "WINDOW", "SshFileReader", "file_size", "upload"]

#: The channel's receive window: enough bytes in flight to cover a WAN round trip at disk speed.
WINDOW = 16 << 20
#: Packets as large as OpenSSH sends (its limit is 256 KiB): fewer per-packet costs in paramiko.
MAX_PACKET = 256 << 10


def file_size(client: SshClient, path: str) -> int:
    """The size of a datastore file (SFTP stat); NotFoundError if missing."""
    path = cmd.volume_path(path)
    try:
        size: int = client.sftp_call(f"stat {path}", lambda sftp: int(sftp.stat(path).st_size or 0))
    except NotFoundError as exc:
        raise NotFoundError(f"no file {path} on host {client.target.host}") from exc
    return size


class SshFileReader:
    """A datastore file read as the standard output of ``cat`` on an exec channel.

    ``size`` is the file's size, known beforehand (the snapshot or the shutdown holds
    it still): the read ends with an OperationError if the stream is longer or shorter,
    or if ``cat`` did not exit 0. A channel with no data for ``stall_s`` seconds raises
    TransientError. :meth:`close` always ends the remote ``cat``.
    """

    def __init__(self, client: SshClient, path: str, *, size: int, stall_s: float = 120.0) -> None:
        self.path = cmd.volume_path(path)
        self.size = size
        self.offset = 0
        self._client = client
        self._chan = client.open_stream(
            cmd.cat_file(self.path), window_size=WINDOW, max_packet_size=MAX_PACKET
        )
        self._chan.settimeout(stall_s)
        self._stall_s = stall_s
        self._done = False

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as the file goes; 0 only at its end (after the checks)."""
        view = memoryview(buffer)
        filled = 0
        while filled < len(view) and not self._done:
            try:
                data = self._chan.recv(len(view) - filled)
            except (TimeoutError, OSError) as exc:
                raise TransientError(
                    f"read {self.path} on host {self._client.target.host}: no data for {self._stall_s:.0f}s "
                    f"or the connection broke at byte {self.offset}: {type(exc).__name__}"
                ) from exc
            except Exception as exc:
                raise self._client.error_for(exc, f"read {self.path}") from exc
            if not data:
                self._finish()
                break
            n = len(data)
            if self.offset + n > self.size:
                raise OperationError(f"{self.path} on host {self._client.target.host} grew while it was read")
            view[filled : filled + n] = data
            filled += n
            self.offset += n
        return filled

    def _finish(self) -> None:
        self._done = True
        if not self._chan.status_event.wait(self._stall_s):
            raise TransientError(f"read {self.path}: no exit status from the host after the end of the data")
        status = self._chan.recv_exit_status()
        if status != 0:
            err = b""
            with contextlib.suppress(Exception):
                while self._chan.recv_stderr_ready():
                    err += self._chan.recv_stderr(4096)
            said = self._client.redact(err.decode("utf-8", "replace").strip())[-500:]
            if "No such file" in said:
                raise NotFoundError(f"no file {self.path} on host {self._client.target.host}")
            raise OperationError(
                f"`cat {self.path}` failed on host {self._client.target.host} (exit {status}): {said or 'no output'}",
                code="ssh_command_failed",
            )
        if self.offset != self.size:
            raise OperationError(
                f"{self.path} on host {self._client.target.host}: read {self.offset} bytes, "
                f"{self.size} were expected (the file changed while it was read)"
            )

    def close(self) -> None:
        """End the read; a ``cat`` still running ends at its next write (the channel is gone)."""
        with contextlib.suppress(Exception):
            self._chan.close()


def upload(
    client: SshClient, path: str, size: int, chunks: Iterable[bytes | memoryview], *, replace: bool
) -> None:
    """Write exactly ``size`` bytes from ``chunks`` to datastore file ``path`` over SFTP.

    The chunks are laid end to end and written by :func:`ceso.ssh.files.write_sparse`: to
    ``<path>.ceso-part``, renamed into place once all are written; without ``replace`` an
    existing ``path`` raises ConflictError before anything is written. Chunks of zeros
    are skipped, so they stay holes. On failure
    the part file is removed. OperationError if ``chunks`` holds more or fewer than ``size`` bytes.
    """
    path = cmd.volume_path(path)

    def pieces() -> Iterator[tuple[int, bytes | memoryview]]:
        offset = 0
        for chunk in chunks:
            n = len(chunk)
            if offset + n > size:
                raise OperationError(f"upload {path}: more bytes than the announced {size}")
            yield offset, chunk
            offset += n
        if offset != size:
            raise OperationError(f"upload {path}: {offset} bytes instead of the announced {size}")

    write_sparse(client, path, pieces(), size, replace=replace)
