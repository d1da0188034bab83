"""Host tasks left behind by a vim-cmd that was stopped at its time limit: cancel them, or wait them out.

Killing ``vim-cmd`` ends the client, not the work: hostd goes on with the
task it started (a snapshot, a power operation, a destroy). Cleaning up
while it runs would race it — removing a directory a task still writes, or
destroying a VM a snapshot is being taken of. So after a timeout the VM's
running tasks (``vimsvc/task_list``, ids ``haTask-VMID-vim.VirtualMachine.X-N``)
are cancelled (``vimsvc/task_cancel``) and awaited (``vimsvc/task_info``)
until none runs or :data:`SETTLE_S` pass.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ceso.errors import CesoError
from ceso.ssh import commands as cmd

if TYPE_CHECKING:
    from ceso.ssh.client import SshClient

__all__ = ["SETTLE_S", "Settled", "parse_task_ids", "parse_task_state", "settle_vm_tasks"]

SETTLE_S = 60.0
_TASK = re.compile(r"'vim\.Task:(?P<id>haTask-(?P<vmid>\d+)-[\w.\-]+)'")
_STATE = re.compile(r'^\s*state\s*=\s*"(?P<state>\w+)"', re.MULTILINE)


def parse_task_ids(text: str) -> dict[str, int]:
    """Task id → VM id of the VM tasks ``vimsvc/task_list`` prints."""
    return {m.group("id"): int(m.group("vmid")) for m in _TASK.finditer(text)}


def parse_task_state(text: str) -> str | None:
    """``running``, ``queued``, ``success`` or ``error`` from ``vimsvc/task_info``; None if not shown."""
    match = _STATE.search(text)
    return match.group("state") if match else None


@dataclass
class Settled:
    """What :func:`settle_vm_tasks` did: tasks it cancelled, and those still running when it gave up."""

    cancelled: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)


def settle_vm_tasks(
    client: SshClient,
    vmid: int,
    *,
    record: Callable[[str, dict[str, Any]], None],
    settle_s: float = SETTLE_S,
) -> Settled:
    """Cancel VM ``vmid``'s running host tasks and wait until none runs (at most ``settle_s``).

    Each command is reported to ``record`` first. Best effort, never raises: a
    host that cannot list or cancel tasks leaves them as they are (reported in
    ``still_running`` when they were seen).
    """
    out = Settled()

    def run(command: cmd.ShellCommand) -> str:
        record("ssh", {"command": command.line})
        return client.run(command, check=False).stdout

    def running() -> list[str]:
        ids = [t for t, v in parse_task_ids(run(cmd.task_list())).items() if v == vmid]
        states = {t: parse_task_state(run(cmd.task_info(t))) for t in ids}
        return [t for t, state in states.items() if state in ("running", "queued")]

    try:
        pending = running()
        for task in pending:
            run(cmd.task_cancel(task))
            out.cancelled.append(task)
        deadline = time.monotonic() + settle_s
        while pending and time.monotonic() < deadline:
            time.sleep(0.5)
            pending = running()
        out.still_running = pending
    except CesoError:
        pass
    return out
