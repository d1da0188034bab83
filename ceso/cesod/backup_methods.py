"""cesod's backup methods: the backup catalog, and the specs and request builders the CLI uses.

``backup.restore`` with ``in_place`` needs mode admin (the worker checks it again);
as a new VM (``as``) it needs standard, like ``vm.create``.
"""

from __future__ import annotations

from typing import Any

from ceso.backup.specs import CreateBackup, DrillBackup, RestoreBackup
from ceso.cesod.calls import Call, Method, job_method, submit_and_report
from ceso.cesod.schema import Param
from ceso.constants import BACKUP_LIST_MAX

__all__ = ["BACKUP_METHODS"]

S, INT, B = "string", "integer", "boolean"


def backup_list(call: Call, p: dict[str, Any]) -> Any:
    from ceso.backup.catalog import list_sets

    return list_sets(
        call.runtime.engine, vm=p["vm"], target=p["target"], status=p["status"], limit=p["limit"]
    )


def backup_create(call: Call, spec: CreateBackup, p: dict[str, Any]) -> Any:
    from ceso.backup.requests import create_request

    return submit_and_report(
        call, spec, create_request(call.runtime, spec, idempotency_key=p["idempotency_key"]), p
    )


def backup_restore(call: Call, spec: RestoreBackup, p: dict[str, Any]) -> Any:
    from ceso.backup.requests import restore_request

    request, documents = restore_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p, documents=documents)


def backup_drill(call: Call, spec: DrillBackup, p: dict[str, Any]) -> Any:
    from ceso.backup.requests import drill_request

    return submit_and_report(
        call, spec, drill_request(call.runtime, spec, idempotency_key=p["idempotency_key"]), p
    )


BACKUP_METHODS = [
    Method(
        "backup.list",
        "Backups, newest first.",
        {
            "vm": Param(S, "Only backups of this VM."),
            "target": Param(S, "Only backups on this target."),
            "status": Param(
                S, "Only this status.", enum=("pending", "completed", "failed", "verified", "expired")
            ),
            "limit": Param(
                INT, "At most this many (0: all).", default=100, minimum=0, maximum=BACKUP_LIST_MAX
            ),
        },
        backup_list,
    ),
    job_method("backup.create", "Back up a VM to a target (a job).", CreateBackup, backup_create),
    job_method(
        "backup.restore",
        "Restore a backup as a new VM (as), or over the original VM (in_place, admin) (a job).",
        RestoreBackup,
        backup_restore,
    ),
    job_method(
        "backup.drill",
        "Restore a backup as a throwaway VM with its NICs disconnected, boot it until VMware Tools "
        "beat, record the outcome on the backup and remove the VM (a job).",
        DrillBackup,
        backup_drill,
    ),
]
