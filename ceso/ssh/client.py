"""One authenticated, pinned, kept-alive SSH connection to one ESXi host (paramiko).

Contract: every public method returns plain data or raises a
:class:`ceso.errors.CesoError` chained from the original (see
:mod:`ceso.ssh.faults`); no paramiko or socket exception escapes. The secret
(password or private key text) is fetched from the secret store by a callable
only when a login needs it, is never kept, and is scrubbed from every message.

* Host key: only the pinned fingerprint is accepted (ThumbprintMismatchError otherwise).
* Reconnects: a dead connection is reopened, with exponential backoff, only
  for connection errors (never for a refused login or a wrong host key), and
  only before a command is sent — a command is never run twice.
* Commands: each runs as ``echo $$; exec <command>`` so the client learns the
  remote process id; a command still running at its timeout is killed with
  ``kill -9 <pid>`` and TimeoutExpiredError is raised. A non-zero exit raises
  OperationError carrying the command and the tail of its stderr.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import paramiko
import tenacity

from ceso.errors import (
    AuthenticationError,
    CesoError,
    HostUnreachableError,
    InvalidInputError,
    ThumbprintMismatchError,
    TransientError,
)
from ceso.ssh.commands import ShellCommand
from ceso.ssh.faults import redact, translate
from ceso.ssh.keys import PinnedHostKeyPolicy, load_private_key
from ceso.ssh.running import CommandResult, RunningCommand
from ceso.ssh.target import SshTarget

__all__ = ["CommandResult", "RunningCommand", "SshClient", "SshTarget"]

log = logging.getLogger(__name__)

#: Bytes or packets after which this client would start a key exchange itself (see ``_connect_once``).
REKEY_LIMIT = 1 << 40


def _retryable(exc: BaseException) -> bool:
    """Connection trouble is retried; a refused login or a wrong host key never is."""
    if isinstance(exc, (AuthenticationError, ThumbprintMismatchError, InvalidInputError)):
        return False
    return isinstance(exc, (HostUnreachableError, TransientError))


class SshClient:
    """A pooled SSH session to one host; thread-safe for concurrent commands."""

    def __init__(
        self,
        target: SshTarget,
        secret: Callable[[], str],
        *,
        connect_timeout: float = 30.0,
        command_timeout: float = 120.0,
        keepalive_s: int = 30,
        connect_attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.target = target
        self._secret = secret
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.keepalive_s = keepalive_s
        self.connect_attempts = connect_attempts
        self.backoff_s = backoff_s
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.RLock()
        self._seen_secrets: set[str] = set()  # only to scrub messages; never logged or stored
        self.logins = 0
        self.commands = 0

    @property
    def name(self) -> str:
        """The host's name in ceso (its target's), as :attr:`ceso.esxi.client.EsxiClient.name`."""
        return self.target.host

    # -- connection ------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return transport is not None and transport.is_active()

    def connect(self) -> SshClient:
        """Log in (again), retrying connection errors with backoff.

        Raises AuthenticationError, ThumbprintMismatchError, HostUnreachableError
        or TransientError; a failed attempt leaves nothing open.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.connect_attempts)),
            wait=tenacity.wait_exponential(multiplier=self.backoff_s, max=10),
            retry=tenacity.retry_if_exception(_retryable),
            reraise=True,
        )
        with self._lock:
            self.close()
            for attempt in retrying:
                with attempt:
                    self._connect_once()
        return self

    def _connect_once(self) -> None:
        target = self.target
        secret = self._secret()
        self._seen_secrets.add(secret)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(PinnedHostKeyPolicy(target.host, target.host_key))
        try:
            pkey = load_private_key(secret, host=target.host) if target.auth == "key" else None
            client.connect(
                target.address,
                port=target.port,
                username=target.username,
                password=secret if target.auth == "password" else None,
                pkey=pkey,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                allow_agent=False,  # only the stored key or password, never the worker's own keys
                look_for_keys=False,
            )
        except Exception as exc:
            client.close()
            raise self.error_for(exc, "log in", connecting=True) from exc
        finally:
            del secret
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(self.keepalive_s)
        # Re-keying is left to the server (OpenSSH re-keys every 1-4 GiB by its RekeyLimit). paramiko's
        # own trigger (every 512 MiB received) races a channel close: a CHANNEL_CLOSE that arrives after
        # paramiko's KEXINIT is answered from the transport thread, which then waits for the key exchange
        # it alone could finish, and the connection dies 30 s later. Disk reads (ceso.ssh.stream) end
        # a channel after every file, so they would hit it; 1 TiB is far inside AES's limits.
        transport.packetizer.REKEY_BYTES = transport.packetizer.REKEY_PACKETS = REKEY_LIMIT
        if isinstance(transport.sock, socket.socket):
            # Each command opens a channel with a few small packets; with Nagle's algorithm
            # against the server's delayed ACK every open waits for that ACK (docs/benchmarks.md).
            with contextlib.suppress(OSError):
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        self.logins += 1
        log.info("ssh: logged in to %s as %s", target.host, target.username)

    def close(self) -> None:
        """Close the session; never raises."""
        with self._lock:
            for closable in (self._sftp, self._client):
                if closable is not None:
                    try:
                        closable.close()
                    except Exception as exc:  # closing a dead connection is fine
                        log.debug("ssh close on %s: %s", self.target.host, exc)
            self._sftp = self._client = None

    def error_for(self, exc: BaseException, action: str, *, connecting: bool = False) -> CesoError:
        """The CesoError for ``exc`` raised while doing ``action`` (secrets seen so far scrubbed)."""
        return translate(
            exc, host=self.target.host, action=action, secrets=self._seen_secrets, connecting=connecting
        )

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            if not self.connected:
                self.connect()
            assert self._client is not None
            transport = self._client.get_transport()
            assert transport is not None
            return transport

    def _open_channel(
        self, action: str, *, window_size: int | None = None, max_packet_size: int | None = None
    ) -> paramiko.Channel:
        """A new session channel; a dead connection is reopened once (nothing was sent yet)."""
        for attempt in (1, 2):
            try:
                return self._transport().open_session(
                    timeout=self.connect_timeout, window_size=window_size, max_packet_size=max_packet_size
                )
            except CesoError:
                raise
            except Exception as exc:
                if attempt == 2:
                    raise self.error_for(exc, action) from exc
                log.info("ssh: connection to %s lost (%s); reconnecting", self.target.host, exc)
                self.close()
        raise AssertionError("unreachable")

    # -- commands ----------------------------------------------------------------------------
    def run(
        self, command: ShellCommand, *, timeout: float | None = None, check: bool = True
    ) -> CommandResult:
        """Run ``command`` and wait for it; see the module docstring for timeout and failure."""
        return self.start(command).wait(timeout if timeout is not None else self.command_timeout, check=check)

    def start(self, command: ShellCommand) -> RunningCommand:
        """Send ``command`` and return at once; call ``wait`` or ``poll`` on the result."""
        line = command.line
        chan = self._open_channel(f"run {line}")
        try:
            chan.exec_command(f"echo $$; exec {line}")
        except Exception as exc:
            chan.close()
            raise self.error_for(exc, f"run {line}") from exc
        self.commands += 1
        return RunningCommand(self, chan, line)

    def open_stream(
        self, command: ShellCommand, *, window_size: int | None = None, max_packet_size: int | None = None
    ) -> paramiko.Channel:
        """Run ``command`` with its standard output left unread on the returned channel.

        For bulk data (:mod:`ceso.ssh.stream`): the caller reads the channel, checks the exit
        status at its end and closes it (closing it ends the remote command with SIGPIPE at its
        next write). ``window_size``/``max_packet_size`` size the channel's flow control.
        """
        line = command.line
        chan = self._open_channel(f"run {line}", window_size=window_size, max_packet_size=max_packet_size)
        try:
            chan.exec_command(line)
        except Exception as exc:
            chan.close()
            raise self.error_for(exc, f"run {line}") from exc
        self.commands += 1
        return chan

    def kill(self, pid: int) -> None:
        """``kill -9 PID`` on the host (best effort; used for commands past their timeout)."""
        try:
            self.start(ShellCommand(("kill", "-9", str(pid)))).wait(self.connect_timeout, check=False)
        except CesoError as exc:
            log.warning("ssh: could not kill process %d on %s: %s", pid, self.target.host, exc.message)

    def redact(self, text: str) -> str:
        return redact(text, self._seen_secrets)

    # -- files (SFTP) ------------------------------------------------------------------------
    def sftp(self) -> paramiko.SFTPClient:
        """The connection's SFTP session (opened on first use)."""
        with self._lock:
            if self._sftp is None or not self.connected:
                transport = self._transport()
                try:
                    self._sftp = paramiko.SFTPClient.from_transport(transport)
                except Exception as exc:
                    raise self.error_for(exc, "open SFTP") from exc
            assert self._sftp is not None
            return self._sftp

    def sftp_call(self, action: str, fn: Callable[[paramiko.SFTPClient], Any]) -> Any:
        """Run ``fn(sftp)``, translating whatever it raises."""
        sftp = self.sftp()
        try:
            return fn(sftp)
        except CesoError:
            raise
        except Exception as exc:
            raise self.error_for(exc, action) from exc
