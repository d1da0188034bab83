"""Builders of the ESXi shell commands the SSH route runs, each argument quoted.

A :class:`ShellCommand` is an argv tuple; its ``line`` joins the arguments
with :func:`shlex.quote`, so a VM or snapshot name holding spaces, quotes,
``$()``, ``;`` or newlines reaches ``vim-cmd`` as one literal argument and the
remote shell never interprets it. Every file argument must be an absolute
path under ``/vmfs/volumes/`` with no ``.``/``..`` segment, no empty segment
and no control character; anything else raises InvalidInputError before a
command exists. Command names are bare (``vim-cmd``), found on the host's PATH
as on ESXi (``/bin`` holds them).
"""

from __future__ import annotations

import shlex
import unicodedata
from dataclasses import dataclass

from ceso.errors import InvalidInputError

__all__ = [
    "RESUME_BLOCK",
    "VOLUMES",
    "ShellCommand",
    "answer_question",
    "cat_file",
    "command_exists",
    "datastore_file",
    "delete_disk",
    "destroy",
    "extend_disk",
    "filesystem_list",
    "from_datastore_path",
    "get_allvms",
    "get_guest",
    "get_message",
    "ipv4_interfaces",
    "portgroup_list",
    "power",
    "power_state",
    "read_file_from",
    "register_vm",
    "snapshot_create",
    "snapshot_get",
    "snapshot_remove",
    "snapshot_revert",
    "task_cancel",
    "task_info",
    "task_list",
    "thin_clone",
    "unregister",
    "volume_path",
]

VOLUMES = "/vmfs/volumes/"
POWER_ACTIONS = ("on", "off", "reset", "shutdown", "reboot")
_TOOLS = ("vim-cmd", "vmkfstools", "esxcli")


@dataclass(frozen=True)
class ShellCommand:
    """One command as an argv; ``line`` is what is sent to the host's shell."""

    argv: tuple[str, ...]

    @property
    def line(self) -> str:
        return " ".join(shlex.quote(arg) for arg in self.argv)

    def __str__(self) -> str:
        return self.line


def _no_controls(value: str, what: str) -> None:
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise InvalidInputError(f"{what} {value!r} contains control characters")


def volume_path(path: str) -> str:
    """``path`` if it is a clean absolute path under ``/vmfs/volumes/<datastore>/``; else InvalidInputError."""
    _no_controls(path, "path")
    if not path.startswith(VOLUMES):
        raise InvalidInputError(f"path {path!r} is outside {VOLUMES}")
    parts = path[len(VOLUMES) :].split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(
            f"path {path!r} must name a file or directory inside a datastore, without . or .."
        )
    return path


def datastore_file(datastore: str, relative: str) -> str:
    """``/vmfs/volumes/<datastore>/<relative>``, validated (see :func:`volume_path`)."""
    if not datastore or "/" in datastore or datastore in (".", ".."):
        raise InvalidInputError(f"datastore name {datastore!r} is not usable in a path")
    return volume_path(f"{VOLUMES}{datastore}/{relative}")


def from_datastore_path(value: str) -> str:
    """``[ds] dir/file.vmdk`` → ``/vmfs/volumes/ds/dir/file.vmdk`` (validated)."""
    if not value.startswith("[") or "]" not in value:
        raise InvalidInputError(f"{value!r} is not a datastore path like [datastore] dir/file")
    datastore, _, rest = value[1:].partition("]")
    return datastore_file(datastore, rest.strip())


def _vmid(vmid: int) -> str:
    if isinstance(vmid, bool) or not isinstance(vmid, int) or vmid < 0:
        raise InvalidInputError(f"VM id {vmid!r} is not a non-negative integer")
    return str(vmid)


def _vim(*args: str) -> ShellCommand:
    return ShellCommand(("vim-cmd", *args))


def get_allvms() -> ShellCommand:
    return _vim("vmsvc/getallvms")


def power_state(vmid: int) -> ShellCommand:
    return _vim("vmsvc/power.getstate", _vmid(vmid))


def power(vmid: int, action: str) -> ShellCommand:
    """``vim-cmd vmsvc/power.<action> VMID``; action is on, off, reset, shutdown or reboot."""
    if action not in POWER_ACTIONS:
        raise InvalidInputError(f"unknown power action {action!r} (known: {', '.join(POWER_ACTIONS)})")
    return _vim(f"vmsvc/power.{action}", _vmid(vmid))


def get_guest(vmid: int) -> ShellCommand:
    return _vim("vmsvc/get.guest", _vmid(vmid))


def snapshot_create(vmid: int, name: str, description: str, *, memory: bool, quiesce: bool) -> ShellCommand:
    """``snapshot.create VMID NAME DESC MEMORY QUIESCE`` (the flags as 1/0, as ghettoVCB passes them)."""
    if not name:
        raise InvalidInputError("snapshot name is empty")
    return _vim("vmsvc/snapshot.create", _vmid(vmid), name, description, str(int(memory)), str(int(quiesce)))


def snapshot_get(vmid: int) -> ShellCommand:
    return _vim("vmsvc/snapshot.get", _vmid(vmid))


def snapshot_revert(vmid: int, snapshot_id: int) -> ShellCommand:
    """``snapshot.revert VMID SNAPSHOT_ID 0``: revert, not suppressing the power-on of a memory snapshot."""
    return _vim("vmsvc/snapshot.revert", _vmid(vmid), _vmid(snapshot_id), "0")


def snapshot_remove(vmid: int, snapshot_id: int) -> ShellCommand:
    """``snapshot.remove VMID SNAPSHOT_ID`` (the id form of ESXi 5.1 and later)."""
    return _vim("vmsvc/snapshot.remove", _vmid(vmid), _vmid(snapshot_id))


def register_vm(vmx_path: str, name: str | None = None) -> ShellCommand:
    """``solo/registervm PATH [NAME]``; prints the new VM id."""
    args = [volume_path(vmx_path)]
    if name is not None:
        _no_controls(name, "VM name")
        args.append(name)
    return _vim("solo/registervm", *args)


def unregister(vmid: int) -> ShellCommand:
    return _vim("vmsvc/unregister", _vmid(vmid))


def destroy(vmid: int) -> ShellCommand:
    """``vmsvc/destroy VMID``: unregister and delete every file of the VM."""
    return _vim("vmsvc/destroy", _vmid(vmid))


def get_message(vmid: int) -> ShellCommand:
    """``vmsvc/message VMID``: show the VM's pending question, if any."""
    return _vim("vmsvc/message", _vmid(vmid))


def answer_question(vmid: int, message_id: str, choice: int) -> ShellCommand:
    """``vmsvc/message VMID MSGID CHOICE`` (message ids look like ``12`` or ``_vmx1``)."""
    if not message_id or not all(c.isalnum() or c == "_" for c in message_id):
        raise InvalidInputError(f"question id {message_id!r} is not an id")
    return _vim("vmsvc/message", _vmid(vmid), message_id, _vmid(choice))


def task_list() -> ShellCommand:
    """``vimsvc/task_list``: the host's recent tasks (``'vim.Task:haTask-VMID-vim.VirtualMachine.X-N'``)."""
    return _vim("vimsvc/task_list")


def _task_id(task_id: str) -> str:
    if not task_id or not all(c.isalnum() or c in "-._" for c in task_id):
        raise InvalidInputError(f"task id {task_id!r} is not a host task id")
    return task_id


def task_info(task_id: str) -> ShellCommand:
    return _vim("vimsvc/task_info", _task_id(task_id))


def task_cancel(task_id: str) -> ShellCommand:
    return _vim("vimsvc/task_cancel", _task_id(task_id))


def thin_clone(source: str, dest: str) -> ShellCommand:
    """``vmkfstools -i SRC DST -d thin``: copy a virtual disk on the host, thin provisioned."""
    return ShellCommand(("vmkfstools", "-i", volume_path(source), volume_path(dest), "-d", "thin"))


def delete_disk(path: str) -> ShellCommand:
    """``vmkfstools -U DISK``: delete a virtual disk (its descriptor and every extent)."""
    return ShellCommand(("vmkfstools", "-U", volume_path(path)))


def cat_file(path: str) -> ShellCommand:
    """``cat PATH``: a datastore file as the command's standard output (a backup's read stream)."""
    return ShellCommand(("cat", volume_path(path)))


#: The block of a resumed read (``dd bs=``): the read starts at the block holding its next byte.
RESUME_BLOCK = 1 << 20


def read_file_from(path: str, offset: int) -> tuple[ShellCommand, int]:
    """``dd if=PATH bs=1048576 skip=N``: a datastore file from the :data:`RESUME_BLOCK` holding byte
    ``offset``, and how many bytes of the output come before ``offset`` (the caller drops them).

    Only ``if``, ``bs`` and ``skip`` are used: an ESXi host's busybox ``dd`` has them in every build
    (``iflag=skip_bytes`` is an optional, later feature of busybox, absent from some builds).
    """
    if offset < 0:
        raise InvalidInputError(f"read offset {offset} is negative")
    block, extra = divmod(offset, RESUME_BLOCK)
    return ShellCommand(("dd", f"if={volume_path(path)}", f"bs={RESUME_BLOCK}", f"skip={block}")), extra


def extend_disk(path: str, size_bytes: int) -> ShellCommand:
    """``vmkfstools -X SIZE PATH``: grow a disk to ``size_bytes`` (the new total size, in K/M/G)."""
    if size_bytes <= 0 or size_bytes % 1024:
        raise InvalidInputError(f"disk size {size_bytes} is not a positive multiple of 1 KiB")
    for unit, factor in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if size_bytes % factor == 0:
            size = f"{size_bytes // factor}{unit}"
            break
    return ShellCommand(("vmkfstools", "-X", size, volume_path(path)))


def filesystem_list() -> ShellCommand:
    return ShellCommand(("esxcli", "storage", "filesystem", "list"))


def ipv4_interfaces() -> ShellCommand:
    return ShellCommand(("esxcli", "network", "ip", "interface", "ipv4", "get"))


def portgroup_list() -> ShellCommand:
    return ShellCommand(("esxcli", "network", "vswitch", "standard", "portgroup", "list"))


def command_exists(tool: str) -> ShellCommand:
    """``sh -c 'command -v "$1"' sh TOOL``: prints the tool's path, exit 1 if absent.

    ``command`` is a shell builtin (POSIX, also in ESXi's busybox sh), so it
    runs inside an ``sh -c`` with the tool name as a positional argument.
    """
    if tool not in _TOOLS:
        raise InvalidInputError(f"unknown ESXi tool {tool!r}")
    return ShellCommand(("sh", "-c", 'command -v "$1"', "sh", tool))
