"""A command running on the host over SSH: output, exit status, timeout (kill), failure.

See :class:`ceso.ssh.client.SshClient` for the contract; this module holds
the per-command half of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ceso.errors import CesoError, OperationError, TimeoutExpiredError

if TYPE_CHECKING:
    import paramiko

    from ceso.ssh.client import SshClient

__all__ = ["CommandResult", "RunningCommand"]

MAX_OUTPUT = 32 * 2**20  # a runaway command must not exhaust the worker's memory
STDERR_TAIL = 2000
POLL_S = 0.05


@dataclass(frozen=True)
class CommandResult:
    """What one command did; ``command`` is the line as sent (redacted)."""

    command: str
    exit_status: int
    stdout: str
    stderr: str
    seconds: float


class RunningCommand:
    """A command sent to the host; read its output with :meth:`wait`."""

    def __init__(self, client: SshClient, chan: paramiko.Channel, line: str) -> None:
        self.client = client
        self.chan = chan
        self.line = line
        self.started = time.monotonic()
        self.pid: int | None = None
        self._out = bytearray()
        self._err = bytearray()
        self._pid_read = False

    def _drain(self) -> None:
        chan = self.chan
        while chan.recv_ready():
            self._out += chan.recv(65536)
        while chan.recv_stderr_ready():
            self._err += chan.recv_stderr(65536)
        if len(self._out) + len(self._err) > MAX_OUTPUT:
            raise OperationError(f"`{self.client.redact(self.line)}` printed more than {MAX_OUTPUT} bytes")
        if not self._pid_read and b"\n" in self._out:
            first, _, rest = bytes(self._out).partition(b"\n")
            self._out = bytearray(rest)
            self._pid_read = True
            self.pid = int(first) if first.strip().isdigit() else None

    def poll(self) -> bool:
        """True once the command has exited (its output may still be buffered)."""
        try:
            self._drain()
            return self.chan.exit_status_ready()
        except CesoError:
            raise
        except Exception as exc:
            raise self.client.error_for(exc, f"run {self.line}") from exc

    def wait(self, timeout: float, *, check: bool = True) -> CommandResult:
        """Wait up to ``timeout`` seconds; kill the command and raise TimeoutExpiredError after that."""
        deadline = self.started + timeout
        try:
            while not self.poll():
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutExpiredError(
                        f"`{self.client.redact(self.line)}` did not finish within {timeout:.0f}s on host "
                        f"{self.client.target.host}; it was stopped",
                        details={"command": self.client.redact(self.line), "pid": self.pid},
                    )
                # Wakes the moment the exit status arrives; otherwise every 50 ms to drain the
                # output, so a chatty command never stalls on a full SSH window.
                self.chan.status_event.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))
            status = self.chan.recv_exit_status()
            # The exit status can overtake the last bytes of output: read on until end of file.
            settle = time.monotonic() + 5
            while not self.chan.eof_received and time.monotonic() < settle:
                self.poll()
                time.sleep(0.002)
            self.poll()
        finally:
            self.chan.close()
        return self._result(status, check=check)

    def _result(self, status: int, *, check: bool) -> CommandResult:
        result = CommandResult(
            command=self.client.redact(self.line),
            exit_status=status,
            stdout=self.client.redact(bytes(self._out).decode("utf-8", errors="replace")),
            stderr=self.client.redact(bytes(self._err).decode("utf-8", errors="replace")),
            seconds=round(time.monotonic() - self.started, 4),
        )
        if check and status != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-STDERR_TAIL:]
            raise OperationError(
                f"`{result.command}` failed on host {self.client.target.host} (exit {status}): "
                f"{tail or 'no output'}",
                code="ssh_command_failed",
                details={"command": result.command, "exit_status": status, "stderr": tail},
            )
        return result

    def stop(self) -> None:
        """Kill the remote process (``kill -9``) and close the channel; never raises."""
        if self.pid is not None:
            self.client.kill(self.pid)
        self.chan.close()
