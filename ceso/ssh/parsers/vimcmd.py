"""Parsers for what ``vim-cmd`` and ``vmkfstools`` print on ESXi (formats in docs/ssh-route.md).

Every parser takes the command's stdout and returns plain data; output it
cannot make sense of raises OperationError (code ``unexpected_output``) naming
what was expected, so a changed format fails loudly instead of being
misread. vim-cmd reports a fault by *printing* it, e.g.
``(vim.fault.NotFound) { ... msg = "Unable to find a VM corresponding to "2"", }``,
whatever its exit status: :func:`find_fault` detects that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ceso.errors import OperationError
from ceso.ssh.parsers.vmodl import parse_vmodl

__all__ = [
    "Fault",
    "GuestReport",
    "Question",
    "SnapshotEntry",
    "find_fault",
    "parse_guest",
    "parse_power_state",
    "parse_question",
    "parse_registered_id",
    "parse_snapshots",
]

_FAULT = re.compile(r"^\((?:vim|vmodl)\.fault\.(?P<name>\w+)\)\s*\{", re.MULTILINE)
_FAULT_MSG = re.compile(r"^\s*msg\s*=\s*\"(?P<msg>.*)\",?\s*$", re.MULTILINE)
_SNAPSHOT_FIELD = re.compile(
    r"^(?P<dashes>-*)Snapshot (?P<key>Name|Id|Desciption|Description|Created On|State)\s*:\s?(?P<value>.*)$"
)
_QUESTION_ID = re.compile(r"^Virtual machine message (?P<id>\w+):", re.MULTILINE)
_CHOICE = re.compile(r"^\s*(?P<n>\d+)\.\s+(?P<label>.*?)\s*(?P<default>\[default\])?\s*$", re.MULTILINE)


def _unexpected(what: str, text: str) -> OperationError:
    return OperationError(
        f"unexpected output from {what}: {text.strip()[:200]!r}",
        code="unexpected_output",
        details={"command": what},
    )


@dataclass(frozen=True)
class Fault:
    """A vSphere fault vim-cmd printed: its short name and message."""

    name: str
    message: str


def find_fault(text: str) -> Fault | None:
    """The fault printed at the start of a line of ``text``, if any (a mention inside a value is not one)."""
    match = _FAULT.search(text)
    if match is None:
        return None
    msg = _FAULT_MSG.search(text, match.end())
    return Fault(match.group("name"), msg.group("msg") if msg else "")


def parse_power_state(text: str) -> str:
    """``Retrieved runtime info`` / ``Powered on`` → the vSphere name ``poweredOn`` (also off, suspended)."""
    states = {"powered on": "poweredOn", "powered off": "poweredOff", "suspended": "suspended"}
    for line in reversed(text.strip().splitlines()):
        state = states.get(line.strip().lower())
        if state is not None:
            return state
    raise _unexpected("vim-cmd vmsvc/power.getstate", text)


def parse_registered_id(text: str) -> int:
    """``solo/registervm`` prints the new VM's id alone on a line."""
    for line in text.strip().splitlines():
        if line.strip().isdigit():
            return int(line.strip())
    raise _unexpected("vim-cmd solo/registervm", text)


@dataclass
class SnapshotEntry:
    """One snapshot of ``vmsvc/snapshot.get``; ``depth`` 0 is a root, children follow their parent."""

    id: int
    name: str
    description: str = ""
    created: str = ""
    state: str = ""
    depth: int = 0
    parent_id: int | None = None


def parse_snapshots(text: str) -> list[SnapshotEntry]:
    """The snapshot tree of ``snapshot.get`` (also printed by create/remove), in the order shown.

    Each snapshot is a block of ``--Snapshot Name : x`` lines; the number of
    dashes gives the depth (2 per level). vim-cmd spells "Desciption" so.
    Output that does not make such a tree (a field before any name, an id that
    is not a number, a child deeper than its parent) raises OperationError
    ``unexpected_output``, never a bare ValueError.
    """
    out: list[SnapshotEntry] = []
    current: dict[str, Any] | None = None
    stack: list[SnapshotEntry] = []

    def close() -> None:
        if current is None:
            return
        if "Id" not in current:
            raise _unexpected("vim-cmd vmsvc/snapshot.get", text)
        depth = max(0, current["depth"])
        if depth > len(stack) or not current["Id"].isdigit():  # a child without its parent, a bad id
            raise _unexpected("vim-cmd vmsvc/snapshot.get", text)
        while len(stack) > depth:
            stack.pop()
        entry = SnapshotEntry(
            id=int(current["Id"]),
            name=current.get("Name", ""),
            description=current.get("Desciption", current.get("Description", "")),
            created=current.get("Created On", ""),
            state=current.get("State", ""),
            depth=depth,
            parent_id=stack[-1].id if stack else None,
        )
        out.append(entry)
        stack.append(entry)

    for line in text.splitlines():
        match = _SNAPSHOT_FIELD.match(line.strip())
        if match is None:
            continue
        key = match.group("key")
        if key == "Name":
            close()
            current = {"depth": len(match.group("dashes")) // 2 - 1}
        if current is None:
            raise _unexpected("vim-cmd vmsvc/snapshot.get", text)
        current[key] = match.group("value").strip() if key != "Name" else match.group("value")
    close()
    return out


@dataclass(frozen=True)
class Question:
    """A question a VM waits on (``vmsvc/message``)."""

    id: str
    text: str
    choices: dict[int, str] = field(default_factory=dict)
    default: int | None = None

    @property
    def is_moved_or_copied(self) -> bool:
        return "msg.uuid.altered" in self.text or "moved or copied" in self.text

    def choice(self, label: str) -> int | None:
        """The number of the choice whose label, without ``_`` accelerators, starts with ``label``."""
        for number, text in self.choices.items():
            if text.replace("_", "").lower().startswith(label.lower()):
                return number
        return None


def parse_question(text: str) -> Question | None:
    """The pending question printed by ``vmsvc/message VMID``; None when there is none."""
    match = _QUESTION_ID.search(text)
    if match is None:
        return None
    body = text[match.end() :]
    choices: dict[int, str] = {}
    default: int | None = None
    for choice in _CHOICE.finditer(body):
        number = int(choice.group("n"))
        choices[number] = choice.group("label")
        if choice.group("default"):
            default = number
    return Question(id=match.group("id"), text=body.strip(), choices=choices, default=default)


@dataclass(frozen=True)
class GuestReport:
    """What ``vmsvc/get.guest`` says about the guest (VMware Tools' view)."""

    tools_running_status: str | None
    hostname: str | None
    ip_address: str | None
    nics: list[tuple[str | None, list[str]]]  # (MAC, addresses)

    @property
    def ip_addresses(self) -> list[str]:
        ips = [ip for _mac, addrs in self.nics for ip in addrs]
        if self.ip_address and self.ip_address not in ips:
            ips.append(self.ip_address)
        return ips


def parse_guest(text: str) -> GuestReport:
    """Parse ``vmsvc/get.guest`` (``Guest information:`` then a ``vim.vm.GuestInfo`` dump)."""
    try:
        info = parse_vmodl(text)
    except ValueError as exc:
        raise _unexpected("vim-cmd vmsvc/get.guest", text) from exc
    if not isinstance(info, dict) or info.get("_type") != "vim.vm.GuestInfo":
        raise _unexpected("vim-cmd vmsvc/get.guest", text)
    nics = [
        (nic.get("macAddress"), [str(ip) for ip in nic.get("ipAddress") or []])
        for nic in info.get("net") or []
        if isinstance(nic, dict)
    ]
    return GuestReport(
        tools_running_status=info.get("toolsRunningStatus"),
        hostname=info.get("hostName"),
        ip_address=info.get("ipAddress"),
        nics=nics,
    )
