"""The table of job kinds (operations): name, summary and the least sandbox mode to run it.

Plain data, read by the CLI, cesod, the submit path, metrics and audit; it
imports nothing heavy. Which function runs a kind is the worker's business:
:data:`ceso.operations.handlers.HANDLERS` maps each kind here to its handler.
"""

from __future__ import annotations

from dataclasses import dataclass

from ceso.errors import InvalidInputError

__all__ = ["JOB_KINDS", "JobKind", "get_kind"]


@dataclass(frozen=True)
class JobKind:
    """One operation: its name, what it does and the least mode allowed to run it."""

    name: str
    summary: str
    mode: str  # read-only, standard or admin


JOB_KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        JobKind("host.ping", "log in to the host and read its clock", "read-only"),
        JobKind("vm.create", "create a VM from a template", "standard"),
        JobKind("vm.clone", "clone a VM with a new identity", "standard"),
        JobKind("backup.create", "back up a VM to a target", "standard"),
        JobKind("backup.restore", "restore a backup as a new VM", "standard"),
        JobKind(
            "backup.drill", "restore a backup as a throwaway VM, boot it, record the outcome", "standard"
        ),
        JobKind("vm.delete", "delete a VM and all its files", "admin"),
        JobKind("vm.power", "power a VM on, off, reset, shut down or reboot", "standard"),
        JobKind(
            "vm.reconfigure", "change CPUs, memory, disk size, NIC port group or ISO of a VM", "standard"
        ),
        JobKind("vm.snapshot.create", "take a snapshot of a VM", "standard"),
        JobKind("vm.snapshot.revert", "revert a VM to a snapshot", "standard"),
        JobKind("vm.snapshot.delete", "delete a snapshot of a VM", "standard"),
        JobKind("template.import", "import an OVA, OVF or VMDK as a new template", "admin"),
        JobKind("test.sleep", "sleep in steps (for tests and benchmarks of the queue)", "read-only"),
    )
}


def get_kind(name: str) -> JobKind:
    """The job kind ``name``; InvalidInputError if unknown."""
    try:
        return JOB_KINDS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown job kind {name!r} (known: {', '.join(sorted(JOB_KINDS))})"
        ) from None
