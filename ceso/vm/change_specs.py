"""The specs of the operations on an existing VM (see :mod:`ceso.specs`): power, delete,
reconfigure and snapshots.

What the spec alone can check is checked here with the shared validators; what needs the
host (the VM, its power state, its snapshots) is checked by the request builders
(:mod:`ceso.vm.lifecycle`, :mod:`ceso.vm.reconfigure`, :mod:`ceso.vm.snapshot_requests`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from ceso.errors import InvalidInputError
from ceso.specs import Spec
from ceso.vm.hardware import DiskGrow, ReconfigureChanges
from ceso.vm.power import DEFAULT_GUEST_TIMEOUT_S, MAX_GUEST_TIMEOUT_S
from ceso.vm.sizes import check_cpus, check_nic_number, parse_disk_bytes, parse_memory_mb
from ceso.vm.snapshots import MAX_DESCRIPTION, validate_snapshot_name

__all__ = [
    "CreateSnapshot",
    "DeleteSnapshot",
    "DeleteVm",
    "PowerVm",
    "ReconfigureVm",
    "RevertSnapshot",
    "changes_from",
    "parse_iso_path",
]

_DATASTORE_PATH = re.compile(r"^\[([^\[\]]+)\] (\S.*)$")
_GLOB = set("*?[]")
_HOST = "The VM's host (optional when the name is unique across hosts)."


def _snapshot(name: str) -> str:
    return validate_snapshot_name(name)


def _description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION or any(
        unicodedata.category(c)[0] == "C" and c not in "\n\t" for c in text
    ):
        raise InvalidInputError(
            f"--description must be at most {MAX_DESCRIPTION} characters without control characters"
        )
    return text


def parse_iso_path(value: str) -> str:
    """Return ``value`` if it is ``[datastore] folder/file.iso``; InvalidInputError saying why not.

    Refused: another form, control characters, glob characters, empty,
    ``.`` or ``..`` path components, a leading ``/``, a name not ending in ``.iso``.
    """
    example = "[datastore] folder/file.iso"
    match = _DATASTORE_PATH.match(value)
    if match is None:
        raise InvalidInputError(f"--iso {value!r} is not a datastore path like {example!r}")
    datastore, path = match.groups()
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise InvalidInputError(f"--iso {value!r} contains control characters")
    if datastore != datastore.strip() or _GLOB & set(path):
        raise InvalidInputError(f"--iso {value!r}: spaces around the datastore name or * ? [ ] in the path")
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(
            f"--iso {value!r}: the path must be relative to the datastore, without . or .."
        )
    if not parts[-1].lower().endswith(".iso") or len(parts[-1]) <= len(".iso"):
        raise InvalidInputError(f"--iso {value!r} does not name an .iso file")
    return value


def changes_from(opts: ReconfigureVm) -> ReconfigureChanges:
    """Parse and check the changes' form (no host needed); InvalidInputError on any problem."""
    if opts.iso is not None and opts.eject_iso:
        raise InvalidInputError("--iso and --eject-iso exclude each other")
    if opts.nic is not None and opts.network is None:
        raise InvalidInputError("--nic chooses the NIC that --network moves; pass --network too")
    if opts.nic is not None:
        check_nic_number(opts.nic)
    if opts.cpus is not None:
        check_cpus(opts.cpus)
    grows = []
    for disk, size in disk_grow_pairs(opts.disk_grow):
        size_bytes = parse_disk_bytes(size, field="--disk-grow size")
        if size_bytes % 1024:
            raise InvalidInputError(f"--disk-grow size {size!r} must be a whole number of KiB")
        grows.append(DiskGrow(disk.strip(), size_bytes))
    changes = ReconfigureChanges(
        cpus=opts.cpus,
        memory_mb=parse_memory_mb(opts.memory) if opts.memory is not None else None,
        disk_grow=tuple(grows),
        network=opts.network,
        nic=opts.nic or 1,
        iso=parse_iso_path(opts.iso) if opts.iso is not None else None,
        eject_iso=opts.eject_iso,
    )
    if changes == ReconfigureChanges(nic=changes.nic):
        raise InvalidInputError(
            "nothing to change: pass --cpus, --memory, --disk-grow, --network, --iso or --eject-iso"
        )
    return changes


def disk_grow_pairs(entries: list[str]) -> list[tuple[str, str]]:
    """``DISK=SIZE`` entries as ``(DISK, SIZE)`` pairs, split at the last ``=`` (a size has none)."""
    pairs = []
    for entry in entries:
        disk, sep, size = entry.rpartition("=")
        if not sep or not disk.strip() or not size.strip():
            raise InvalidInputError(
                f"disk_grow entry {entry!r} is not DISK=SIZE (e.g. 1=40G or 'Hard disk 2=100G')"
            )
        pairs.append((disk, size))
    return pairs


class _OnVm(Spec):
    """An operation on one existing VM."""

    name: str = Field(description="The VM's name.")
    host: str | None = Field(None, description=_HOST)


class PowerVm(_OnVm):
    """``vm.power``: power a VM on, off, reset it, shut its guest down or reboot it."""

    kind = "vm.power"

    action: Literal["on", "off", "shutdown", "reboot", "reset"] = Field(description="What to do.")
    force: bool = Field(False, description="shutdown: power off if the guest does not stop in time.")
    timeout_guest: float = Field(
        DEFAULT_GUEST_TIMEOUT_S,
        description="shutdown: how long to wait for the guest to power off, in seconds.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.force and self.action != "shutdown":
            raise InvalidInputError("--force only applies to shutdown (power off if the guest does not stop)")
        if not 0 < self.timeout_guest <= MAX_GUEST_TIMEOUT_S:
            raise InvalidInputError(
                f"--timeout-guest must be more than 0 and at most {MAX_GUEST_TIMEOUT_S:.0f}s"
            )
        return self


class DeleteVm(_OnVm):
    """``vm.delete``: a VM and all its files."""

    kind = "vm.delete"

    force: bool = Field(False, description="Power the VM off first if it is running.")


class ReconfigureVm(_OnVm):
    """``vm.reconfigure``: CPUs, memory, disk sizes, NIC port group or ISO in one reconfigure task."""

    kind = "vm.reconfigure"

    cpus: int | None = Field(None, description="Virtual CPUs (on a running VM only with CPU hot-add).")
    memory: str | None = Field(
        None,
        description="Memory, e.g. 4G or 4096M (a bare number is MiB, at least 256); a running VM needs memory hot-add.",
    )
    disk_grow: list[str] = Field(
        [],
        description="Disks to grow, each DISK=SIZE (split at the last =): DISK is a number from 1 or a label "
        "such as 'Hard disk 2', e.g. 1=40G or 'Hard disk 2=100G'; never shrinks. Repeatable.",
    )
    network: str | None = Field(None, description="Move a NIC to this port group.")
    nic: int | None = Field(None, description="The NIC network moves, numbered from 1 (default: the first).")
    iso: str | None = Field(
        None, description="Attach an ISO from a datastore, e.g. '[datastore1] iso/ubuntu.iso'."
    )
    eject_iso: bool = Field(False, description="Eject the ISO from the CD-ROM.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.changes  # noqa: B018  (every change parsed and checked now: InvalidInputError)
        return self

    @property
    def changes(self) -> ReconfigureChanges:
        """The changes asked for, parsed (InvalidInputError on any problem of form)."""
        return changes_from(self)


class _OnSnapshot(_OnVm):
    snapshot: Annotated[str, AfterValidator(_snapshot)] = Field(description="The snapshot's name.")


class CreateSnapshot(_OnSnapshot):
    """``vm.snapshot.create``: a snapshot whose name is new on that VM."""

    kind = "vm.snapshot.create"

    description: Annotated[str, AfterValidator(_description)] = Field(
        "", description="Free text kept with the snapshot."
    )
    memory: bool = Field(False, description="Include the running VM's memory.")
    quiesce: bool = Field(False, description="Quiesce the guest file systems first (needs VMware Tools).")


class RevertSnapshot(_OnSnapshot):
    """``vm.snapshot.revert``: changes since are lost, the VM takes the snapshot's power state."""

    kind = "vm.snapshot.revert"


class DeleteSnapshot(_OnSnapshot):
    """``vm.snapshot.delete``: its changes are kept in the VM."""

    kind = "vm.snapshot.delete"

    children: bool = Field(False, description="Delete the snapshots below it too.")
