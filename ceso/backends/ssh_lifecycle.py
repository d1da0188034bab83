"""Power, guest, snapshot and delete operations of the SSH route (mixed into SshVmBackend).

``power.on`` is special: ESXi may stop a VM at power-on with the "moved or
copied" question (``msg.uuid.altered``), and ``vim-cmd vmsvc/power.on`` then
waits until someone answers. So power-on is started, and while it runs the
pending question is read (``vmsvc/message``) and answered "I copied it" — a
copy must get a new identity. Any other question is not guessed at: the
command is stopped and OperationError shows the question.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ceso.backends.faults import translate as translate_fault
from ceso.errors import CesoError, OperationError, TimeoutExpiredError
from ceso.ssh import commands as cmd
from ceso.ssh.handles import SshSnapshot, SshVm
from ceso.ssh.hosttasks import SETTLE_S, settle_vm_tasks
from ceso.ssh.parsers import find_fault, parse_guest, parse_power_state, parse_question, parse_snapshots

if TYPE_CHECKING:
    from ceso.backends.protocol import Recorder
    from ceso.ssh.client import CommandResult, SshClient

__all__ = ["PrintedFaultError", "SshLifecycle", "SshSnapshotInfo", "SshSnapshotNode"]

QUESTION_POLL_S = 0.5


class PrintedFaultError(Exception):
    """A fault vim-cmd printed, shaped for ceso.backends.faults.translate (it reads the class name and msg)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


@dataclass
class SshSnapshotNode:
    """A snapshot tree node with the attribute names of vSphere's ``VirtualMachineSnapshotTree``.

    ``createTime`` is an aware UTC datetime, as on the API route.
    """

    name: str
    id: int
    description: str
    createTime: datetime | None  # noqa: N815 - vSphere's attribute names, so callers treat both routes alike
    state: str
    snapshot: SshSnapshot
    quiesced: bool = False  # vim-cmd does not say; ceso's own snapshots over SSH are not quiesced
    childSnapshotList: list[SshSnapshotNode] = field(default_factory=list)  # noqa: N815


@dataclass
class SshSnapshotInfo:
    """A VM's ``snapshot`` property (``vim.vm.SnapshotInfo``) as the SSH route can know it."""

    rootSnapshotList: list[SshSnapshotNode]  # noqa: N815
    currentSnapshot: Any = None  # noqa: N815 - vim-cmd snapshot.get does not mark the current one


def _created(text: str) -> datetime | None:
    """``2/23/2015 18:12:50`` (month/day/year, as vim-cmd prints it) → an aware UTC datetime.

    ESXi keeps its clock in UTC (it has no time zone setting), so the time vim-cmd prints
    is UTC, as the API route's ``createTime`` is. None if unreadable.
    """
    try:
        return datetime.strptime(text.strip(), "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


class SshLifecycle:
    """Operations on an existing VM; needs ``run``, ``client``, ``record``, ``task_timeout``."""

    client: SshClient
    record: Recorder
    task_timeout: float

    def run(
        self, command: cmd.ShellCommand, *, timeout: float | None = None, action: str = ""
    ) -> CommandResult:
        raise NotImplementedError

    # -- power ---------------------------------------------------------------------------------
    def power_state(self, vm: SshVm) -> str:
        return parse_power_state(self.run(cmd.power_state(vm.vmid)).stdout)

    def raise_for(self, result: CommandResult, action: str) -> None:
        """Raise for a printed vim-cmd fault (as the API route would) or a non-zero exit."""
        fault = find_fault(result.stdout) or find_fault(result.stderr)
        if fault is not None:
            exc = type(fault.name, (PrintedFaultError,), {})(fault.message or fault.name)
            raise translate_fault(exc, host=self.client.target.host, action=action) from None
        if result.exit_status != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-2000:]
            raise OperationError(
                f"`{result.command}` failed on host {self.client.target.host} (exit {result.exit_status}): "
                f"{tail or 'no output'}",
                code="ssh_command_failed",
                details={"command": result.command, "exit_status": result.exit_status, "stderr": tail},
            )

    def settle_after_timeout(self, command: cmd.ShellCommand, exc: CesoError, call: dict[str, Any]) -> None:
        """After ``command`` (``vim-cmd vmsvc/X VMID …``) was stopped at its time limit, cancel and
        await the VM's host tasks (:mod:`ceso.ssh.hosttasks`) so that no cleanup races them; what
        was done goes into the step's call and the error's details."""
        argv = command.argv
        if (
            argv[:1] != ("vim-cmd",)
            or len(argv) < 3
            or not argv[1].startswith("vmsvc/")
            or not argv[2].isdigit()
        ):
            return
        settled = settle_vm_tasks(
            self.client, int(argv[2]), record=self.record, settle_s=min(SETTLE_S, self.task_timeout)
        )
        call["host_tasks"] = exc.details["host_tasks"] = {
            "cancelled": settled.cancelled,
            "still_running": settled.still_running,
        }

    def power_on(self, vm: SshVm) -> str:
        """Power on, answering the "moved or copied" question with "I copied it" if ESXi asks it.

        Success is the state read back (``power.getstate``), not the exit status: a VM not
        powered on afterwards raises OperationError ``power_on_failed`` with what vim-cmd said.
        Returns the state read (``poweredOn``).
        """
        command = cmd.power(vm.vmid, "on")
        call: dict[str, Any] = {"command": command.line}
        self.record("ssh", call)
        running = self.client.start(command)
        deadline = time.monotonic() + self.task_timeout
        try:
            while not running.poll() and time.monotonic() < deadline:
                self.answer_copied_question(vm)
                time.sleep(QUESTION_POLL_S)
        except BaseException:
            running.stop()  # an unanswerable question: do not leave vim-cmd waiting on it
            raise
        try:
            result = running.wait(self.task_timeout, check=False)  # past the deadline: killed
        except TimeoutExpiredError as exc:
            self.settle_after_timeout(command, exc, call)
            raise
        call.update(exit_status=result.exit_status, seconds=result.seconds)
        self.raise_for(result, f"power on {vm.name}")
        # Older hosts print "Power on failed" (and why) and exit 0: only the state read back tells.
        state = self.power_state(vm)
        if state != "poweredOn":
            said = (result.stdout.strip() or result.stderr.strip())[-500:]
            raise OperationError(
                f"power on {vm.name} failed on host {self.client.target.host}: the VM is {state}"
                + (f"; vim-cmd said: {said}" if said else ""),
                code="power_on_failed",
                details={"command": result.command, "power_state": state},
            )
        return state

    def answer_copied_question(self, vm: SshVm) -> bool:
        """Answer a pending "moved or copied" question with "I copied it"; True if one was answered.

        Any other pending question raises OperationError with its text.
        """
        command = cmd.get_message(vm.vmid)
        call: dict[str, Any] = {"command": command.line}
        self.record("ssh", call)
        result = self.client.run(command, check=False)
        call.update(exit_status=result.exit_status, seconds=result.seconds)
        question = parse_question(result.stdout)
        if question is None:
            # "No message." comes with a non-zero exit status on some hosts: that is no failure.
            if result.exit_status != 0 and result.stdout.strip() != "No message.":
                self.raise_for(result, f"read the pending question of VM {vm.name}")
            self.raise_for(replace(result, exit_status=0), f"read the pending question of VM {vm.name}")
            return False
        choice = question.choice("I copied") if question.is_moved_or_copied else None
        if choice is None:
            raise OperationError(
                f"VM {vm.name} waits on a question ceso does not answer; answer it in the ESXi host client: "
                f"{question.text[:300]}",
                code="vm_question",
            )
        self.run(cmd.answer_question(vm.vmid, question.id, choice))
        return True

    def power_off(self, vm: SshVm) -> None:
        self.run(cmd.power(vm.vmid, "off"), timeout=self.task_timeout, action=f"power off {vm.name}")

    def reset(self, vm: SshVm) -> None:
        self.run(cmd.power(vm.vmid, "reset"), timeout=self.task_timeout, action=f"reset {vm.name}")

    def reboot_guest(self, vm: SshVm) -> None:
        self.run(cmd.power(vm.vmid, "reboot"), action=f"guest reboot {vm.name}")

    def ask_guest_shutdown(self, vm: SshVm) -> None:
        """``vmsvc/power.shutdown``: ask, no wait (:func:`ceso.backends.guest.shut_down_guest` waits)."""
        self.run(cmd.power(vm.vmid, "shutdown"), action=f"guest shutdown {vm.name}")

    def destroy(self, vm: SshVm) -> None:
        """``vmsvc/destroy``: unregister the VM and delete all its files."""
        self.run(cmd.destroy(vm.vmid), timeout=self.task_timeout, action=f"destroy VM {vm.name}")

    def unregister(self, vm: SshVm) -> None:
        """``vmsvc/unregister``: forget the VM, keep its files."""
        self.run(cmd.unregister(vm.vmid), action=f"unregister VM {vm.name}")

    def guest_ips(self, vm: SshVm) -> list[str]:
        """The addresses ``vmsvc/get.guest`` reports now (one command)."""
        return parse_guest(self.run(cmd.get_guest(vm.vmid)).stdout).ip_addresses

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot_info(self, vm: SshVm) -> SshSnapshotInfo | None:
        """The ``snapshot`` property: None when the VM has no snapshot (as the property collector)."""
        roots = self.snapshot_tree(vm)
        return SshSnapshotInfo(roots) if roots else None

    def snapshot_tree(self, vm: SshVm) -> list[SshSnapshotNode]:
        entries = parse_snapshots(self.run(cmd.snapshot_get(vm.vmid)).stdout)
        nodes = {
            e.id: SshSnapshotNode(
                e.name,
                e.id,
                e.description,
                _created(e.created),
                "poweredOn" if e.state == "powered on" else "poweredOff",
                SshSnapshot(vm, e.id, e.name),
            )
            for e in entries
        }
        roots = []
        for entry in entries:
            if entry.parent_id is None:
                roots.append(nodes[entry.id])
            else:
                nodes[entry.parent_id].childSnapshotList.append(nodes[entry.id])
        return roots

    def create_snapshot(
        self, vm: SshVm, name: str, *, description: str = "", memory: bool = False, quiesce: bool = False
    ) -> SshSnapshot:
        """Take a snapshot; returns it (the newest snapshot of that name, as vim-cmd prints no id)."""
        command = cmd.snapshot_create(vm.vmid, name, description, memory=memory, quiesce=quiesce)
        self.run(command, timeout=self.task_timeout, action=f"create snapshot {name}")
        entries = [e for e in parse_snapshots(self.run(cmd.snapshot_get(vm.vmid)).stdout) if e.name == name]
        if not entries:
            raise OperationError(f"snapshot {name!r} of VM {vm.name} is not listed after its creation")
        return SshSnapshot(vm, max(e.id for e in entries), name)

    def revert_snapshot(self, snapshot: SshSnapshot) -> None:
        """Revert to ``snapshot``; the VM ends in the snapshot's power state, as through the API."""
        command = cmd.snapshot_revert(snapshot.vm.vmid, snapshot.id)
        self.run(command, timeout=self.task_timeout, action=f"revert to snapshot {snapshot.name}")

    def remove_snapshot(self, snapshot: SshSnapshot, *, children: bool = False) -> None:
        if children:
            raise OperationError(
                "removing a snapshot with its children is not done over SSH", code="not_supported_over_ssh"
            )
        command = cmd.snapshot_remove(snapshot.vm.vmid, snapshot.id)
        self.run(command, timeout=self.task_timeout, action=f"remove snapshot {snapshot.name}")
