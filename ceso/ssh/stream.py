"""Bulk datastore file transfers over SSH: a read stream and an upload, for backups and restores.

Reads are ``cat PATH`` on an SSH exec channel, its standard output read straight
off the channel (:class:`SshFileReader`), resumed after a cut with ``dd`` from where
they stopped; on a free-licensed host the API cannot
serve ``/folder`` to a read-only session's jobs reliably, and this is the
fastest path that works there — faster than SFTP with prefetch, which pays a
request per 32 KiB (figures in docs/benchmarks.md). Uploads go through SFTP with
pipelined writes (:func:`upload`, over :func:`ceso.ssh.files.write_sparse`, the
one sparse writer): no shell line carries data, runs of zeros are skipped (the
file stays sparse), and the file appears under its name only once complete.

Errors are CesoErrors: NotFoundError for a missing file, HostUnreachableError for a
read whose connection broke or stalled and did not come back in time, OperationError for a file whose size changed
under the read or a command that failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from ceso.errors import CesoError, NotFoundError, OperationError, TransientError
from ceso.jobs.retry import ReadResume
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
    or if ``cat`` did not exit 0. A connection that broke, or a channel with no data for
    ``stall_s`` seconds, is resumed by ``resume`` (:class:`~ceso.jobs.retry.ReadResume`: a
    job's ``jobs.host_retry_s``): a new channel (the client logs in again if it must) runs
    ``dd`` from the 1 MiB block holding the next byte (:func:`ceso.ssh.commands.read_file_from`),
    and the bytes before it are dropped, so the caller sees one stream. Past the window the read
    raises HostUnreachableError. :meth:`close` always ends the remote command.
    """

    def __init__(
        self,
        client: SshClient,
        path: str,
        *,
        size: int,
        stall_s: float = 120.0,
        resume: ReadResume | None = None,
    ) -> None:
        self.path = cmd.volume_path(path)
        self.size = size
        self.offset = 0
        self._client = client
        self._stall_s = stall_s
        self._resume = resume or ReadResume()
        self._where = f"read {self.path} on host {client.target.host}"
        self._drop = 0  # bytes the resumed command sends before ``offset``
        self._done = False
        try:
            self._open()
        except CesoError as exc:
            self._resume.reopen(self._where, 0, exc, self._open)

    @property
    def resumes(self) -> int:
        """Reads resumed so far with this reader's :class:`~ceso.jobs.retry.ReadResume`."""
        return self._resume.resumes

    def _open(self) -> None:
        if self.offset == 0:
            command, self._drop = cmd.cat_file(self.path), 0
        else:
            command, self._drop = cmd.read_file_from(self.path, self.offset)
        self._chan = self._client.open_stream(command, window_size=WINDOW, max_packet_size=MAX_PACKET)
        self._chan.settimeout(self._stall_s)

    def _cut(self, why: str) -> None:
        """The connection broke at ``offset``: go on from there, or raise (see the class)."""
        self.close()
        cause = TransientError(f"{self._where}: {why} at byte {self.offset}", code="connection_lost")
        self._resume.reopen(self._where, self.offset, cause, self._open)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as the file goes; 0 only at its end (after the checks)."""
        view = memoryview(buffer)
        filled = 0
        while filled < len(view) and not self._done:
            try:
                data = self._chan.recv(len(view) - filled + self._drop)
            except (TimeoutError, OSError) as exc:
                self._cut(f"no data for {self._stall_s:.0f}s or the connection broke ({type(exc).__name__})")
                continue
            except Exception as exc:
                self.close()
                fault = self._client.error_for(exc, f"read {self.path}")
                self._resume.reopen(self._where, self.offset, fault, self._open)
                continue
            if not data:
                if self._finish():
                    break
                continue
            if self._drop:
                dropped = min(self._drop, len(data))
                data, self._drop = data[dropped:], self._drop - dropped
            n = len(data)
            if self.offset + n > self.size:
                raise OperationError(f"{self.path} on host {self._client.target.host} grew while it was read")
            view[filled : filled + n] = data
            filled += n
            self.offset += n
        return filled

    def _finish(self) -> bool:
        """The stream ended: True at the file's end, False after resuming a read cut short."""
        if not self._chan.status_event.wait(self._stall_s):
            self._cut("no exit status after the end of the data")
            return False
        status = self._chan.recv_exit_status()
        if status == -1:  # the channel closed without an exit status: the connection went
            self._cut("the connection broke")
            return False
        self._done = True
        if status != 0:
            err = b""
            with contextlib.suppress(Exception):
                while self._chan.recv_stderr_ready():
                    err += self._chan.recv_stderr(4096)
            said = self._client.redact(err.decode("utf-8", "replace").strip())[-500:]
            if "No such file" in said:
                raise NotFoundError(f"no file {self.path} on host {self._client.target.host}")
            raise OperationError(
                f"reading {self.path} failed on host {self._client.target.host} (exit {status}): "
                f"{said or 'no output'}",
                code="ssh_command_failed",
            )
        if self.offset != self.size:
            raise OperationError(
                f"{self.path} on host {self._client.target.host}: read {self.offset} bytes, "
                f"{self.size} were expected (the file changed while it was read)"
            )
        return True

    def close(self) -> None:
        """End the read; a command still running ends at its next write (the channel is gone)."""
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
