"""The handler of every job kind, by reference: the worker's half of :mod:`ceso.jobs.kinds`.

Importing this module imports every operation, so only the worker side does
(:mod:`ceso.jobs.runner`); the CLI and cesod submit by kind name and read
:data:`~ceso.jobs.kinds.JOB_KINDS` only. A handler is named for its kind
(``vm.create`` -> ``run_vm_create``); a test holds both tables to the same kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ceso.jobs.context import JobContext
from ceso.jobs.kinds import get_kind
from ceso.operations.backup_create import run_backup_create
from ceso.operations.backup_drill import run_backup_drill
from ceso.operations.backup_restore import run_backup_restore
from ceso.operations.host_ping import run_host_ping
from ceso.operations.template_import import run_template_import
from ceso.operations.test_sleep import run_test_sleep
from ceso.operations.vm_clone import run_vm_clone
from ceso.operations.vm_create import run_vm_create
from ceso.operations.vm_delete import run_vm_delete
from ceso.operations.vm_power import run_vm_power
from ceso.operations.vm_reconfigure import run_vm_reconfigure
from ceso.operations.vm_snapshot_create import run_vm_snapshot_create
from ceso.operations.vm_snapshot_delete import run_vm_snapshot_delete
from ceso.operations.vm_snapshot_revert import run_vm_snapshot_revert

__all__ = ["HANDLERS", "Handler", "handler_for"]

#: Runs one attempt of a job through its context; returns the job's result (stored in SQL).
Handler = Callable[[JobContext], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "host.ping": run_host_ping,
    "vm.create": run_vm_create,
    "vm.clone": run_vm_clone,
    "backup.create": run_backup_create,
    "backup.restore": run_backup_restore,
    "backup.drill": run_backup_drill,
    "vm.delete": run_vm_delete,
    "vm.power": run_vm_power,
    "vm.reconfigure": run_vm_reconfigure,
    "vm.snapshot.create": run_vm_snapshot_create,
    "vm.snapshot.revert": run_vm_snapshot_revert,
    "vm.snapshot.delete": run_vm_snapshot_delete,
    "template.import": run_template_import,
    "test.sleep": run_test_sleep,
}


def handler_for(kind: str) -> Handler:
    """The handler of job kind ``kind``; InvalidInputError if the kind is unknown."""
    get_kind(kind)
    return HANDLERS[kind]
