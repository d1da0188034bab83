"""cesod's backup methods: the backup catalog and request builders the CLI uses, params spelled like its options.

``backup.restore`` with ``in_place`` needs mode admin (the worker checks it again);
as a new VM (``as``) it needs standard, like ``vm.create``.
"""

from __future__ import annotations

from typing import Any

from ceso.cesod.calls import JOB_PARAMS, Call, Method, submit_and_report
from ceso.cesod.schema import Param
from ceso.cesod.vm_methods import GUEST, guest_options

__all__ = ["BACKUP_METHODS"]

S, INT, B = "string", "integer", "boolean"


def backup_list(call: Call, p: dict[str, Any]) -> Any:
    from ceso.backup.catalog import list_sets

    return list_sets(
        call.runtime.engine, vm=p["vm"], target=p["target"], status=p["status"], limit=p["limit"]
    )


def backup_create(call: Call, p: dict[str, Any]) -> Any:
    from ceso.backup.requests import create_request
    from ceso.cli.backup.create import CREATE_PLAN

    hot = p["hot"]
    request = create_request(
        call.runtime,
        vm=p["vm"],
        host=p["host"],
        target=p["target"],
        compression=p["compress"],
        level=p["level"],
        mode=None if hot is None else ("hot" if hot else "cold"),
        encrypt=p["encrypt"],
        idempotency_key=p["idempotency_key"],
    )
    return submit_and_report(call, request, p, plan=CREATE_PLAN)


def backup_restore(call: Call, p: dict[str, Any]) -> Any:
    from ceso.backup.requests import restore_request
    from ceso.cli.backup.restore import RESTORE_PLAN

    with guest_options(p) as guest:
        request, documents = restore_request(
            call.runtime,
            backup_id=p["backup_id"],
            name=p["as"],
            host=p["host"],
            datastore=p["datastore"],
            network=p["network"],
            guest=guest,
            power_on=not p["no_power_on"],
            idempotency_key=p["idempotency_key"],
            in_place=p["in_place"],
        )
    return submit_and_report(call, request, p, plan=RESTORE_PLAN, documents=documents)


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
            "limit": Param(INT, "At most this many (0: all).", default=100),
        },
        backup_list,
    ),
    Method(
        "backup.create",
        "Back up a VM to a target (a job).",
        {
            "vm": Param(S, "The VM to back up.", required=True),
            "host": Param(S, "Host of the VM (optional when its name is unique)."),
            "target": Param(S, "Backup target (default: backups.default_target)."),
            "compress": Param(S, "Compression.", enum=("zstd", "gzip", "none")),
            "level": Param(INT, "Compression level (zstd 1-22, gzip 1-9)."),
            "hot": Param(B, "true: hot (temporary snapshot), false: cold; default: hot if the VM runs."),
            "encrypt": Param(B, "AES-256-GCM with the key in the secret store.", default=False),
            **JOB_PARAMS,
        },
        backup_create,
    ),
    Method(
        "backup.restore",
        "Restore a backup as a new VM (as), or over the original VM (in_place, admin) (a job).",
        {
            "backup_id": Param(S, "The backup's id (or a unique prefix).", required=True),
            "as": Param(S, "Name of the new VM."),
            "in_place": Param(B, "Overwrite the disks of the original, powered-off VM.", default=False),
            "host": Param(S, "Host to restore to (default: the VM's original host)."),
            "datastore": Param(S, "Datastore for the new VM."),
            "network": Param(S, "Port group of the first NIC."),
            "no_power_on": Param(B, "Leave the new VM powered off.", default=False),
            **GUEST,
            **JOB_PARAMS,
        },
        backup_restore,
    ),
]
