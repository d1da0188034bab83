"""The table of job kinds (operations), shared by the CLI, workers, metrics and audit.

A kind names its handler by import path so that reading this table imports
nothing heavy; the worker resolves the handler when a job of that kind runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ceso.errors import InvalidInputError

if TYPE_CHECKING:
    from ceso.jobs.context import JobContext

__all__ = ["JOB_KINDS", "JobKind", "get_kind"]

Handler = Callable[["JobContext"], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    """One operation: its name, what it needs and the handler that runs it."""

    name: str
    summary: str
    handler_path: str
    mode: str  # the least sandbox mode allowed to run it: read-only, standard or admin
    soft_time_limit_s: int | None = None

    def handler(self) -> Handler:
        module, _, attr = self.handler_path.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        assert callable(fn)
        return fn  # type: ignore[no-any-return]


JOB_KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        JobKind(
            "host.ping",
            "log in to the host and read its clock",
            "ceso.operations.host_ping:run",
            "read-only",
            soft_time_limit_s=120,
        ),
        JobKind("vm.create", "create a VM from a template", "ceso.operations.vm_create:run", "standard"),
        JobKind("vm.clone", "clone a VM with a new identity", "ceso.operations.vm_clone:run", "standard"),
        JobKind("backup.create", "back up a VM to a target", "ceso.operations.backup_create:run", "standard"),
        JobKind(
            "backup.restore", "restore a backup as a new VM", "ceso.operations.backup_restore:run", "standard"
        ),
        JobKind("vm.delete", "delete a VM and all its files", "ceso.operations.vm_delete:run", "admin"),
        JobKind(
            "vm.power",
            "power a VM on, off, reset, shut down or reboot",
            "ceso.operations.vm_power:run",
            "standard",
        ),
        JobKind(
            "vm.reconfigure",
            "change CPUs, memory, disk size, NIC port group or ISO of a VM",
            "ceso.operations.vm_reconfigure:run",
            "standard",
        ),
        JobKind(
            "vm.snapshot.create",
            "take a snapshot of a VM",
            "ceso.operations.vm_snapshot_create:run",
            "standard",
        ),
        JobKind(
            "vm.snapshot.revert",
            "revert a VM to a snapshot",
            "ceso.operations.vm_snapshot_revert:run",
            "standard",
        ),
        JobKind(
            "vm.snapshot.delete",
            "delete a snapshot of a VM",
            "ceso.operations.vm_snapshot_delete:run",
            "standard",
        ),
        JobKind(
            "test.sleep",
            "sleep in steps (for tests and benchmarks of the queue)",
            "ceso.operations.test_sleep:run",
            "read-only",
        ),
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
