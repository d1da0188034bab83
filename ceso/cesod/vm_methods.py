"""cesod's VM methods: a job method's params are its spec (:mod:`ceso.vm.specs`,
:mod:`ceso.vm.change_specs`), run through the same request builders as the CLI.

The spec holds what the CLI builds from its options: ``userdata`` and ``vendordata``
are the documents themselves and ``ssh_key`` public key lines (the CLI reads the files
its options name; cesod never reads a file a caller names), and ``vm.reconfigure``'s
``disk_grow`` is an array of ``DISK=SIZE`` strings where the CLI repeats
``--disk-grow DISK SIZE``.
"""

from __future__ import annotations

from typing import Any

from ceso.cesod.calls import Call, Method, job_method, submit_and_report
from ceso.cesod.schema import Param
from ceso.vm.change_specs import (
    CreateSnapshot,
    DeleteSnapshot,
    DeleteVm,
    PowerVm,
    ReconfigureVm,
    RevertSnapshot,
)
from ceso.vm.specs import CloneVm, CreateVm

__all__ = ["VM_METHODS"]

S, INT, N, B, A = "string", "integer", "number", "boolean", "array"

HOST = {"host": Param(S, "The VM's host (optional when the name is unique across hosts).")}


def vm_list(call: Call, p: dict[str, Any]) -> Any:
    from ceso.inventory import list_all_vms

    return [v.to_dict() for v in list_all_vms(call.runtime, p["host"])]


def vm_info(call: Call, p: dict[str, Any]) -> Any:
    from ceso.inventory import vm_details

    return vm_details(call.runtime, p["name"], p["host"]).to_dict()


def vm_create(call: Call, spec: CreateVm, p: dict[str, Any]) -> Any:
    from ceso.vm.requests import create_request

    request, documents = create_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p, documents=documents)


def vm_clone(call: Call, spec: CloneVm, p: dict[str, Any]) -> Any:
    from ceso.vm.requests import clone_request

    request, documents = clone_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p, documents=documents)


def vm_power(call: Call, spec: PowerVm, p: dict[str, Any]) -> Any:
    from ceso.vm.lifecycle import power_request

    return submit_and_report(
        call, spec, power_request(call.runtime, spec, idempotency_key=p["idempotency_key"]), p
    )


def vm_reconfigure(call: Call, spec: ReconfigureVm, p: dict[str, Any]) -> Any:
    from ceso.vm.reconfigure import reconfigure_request

    request, changes = reconfigure_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p, details=changes)


def vm_snapshot_create(call: Call, spec: CreateSnapshot, p: dict[str, Any]) -> Any:
    from ceso.vm.snapshot_requests import snapshot_create_request

    request = snapshot_create_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p)


def vm_snapshot_list(call: Call, p: dict[str, Any]) -> Any:
    from ceso.vm.snapshot_requests import list_snapshots

    return list_snapshots(call.runtime, name=p["name"], host=p["host"])


def vm_snapshot_revert(call: Call, spec: RevertSnapshot, p: dict[str, Any]) -> Any:
    from ceso.vm.snapshot_requests import snapshot_revert_request

    request = snapshot_revert_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p)


def vm_snapshot_delete(call: Call, spec: DeleteSnapshot, p: dict[str, Any]) -> Any:
    from ceso.vm.snapshot_requests import snapshot_delete_request

    request = snapshot_delete_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p)


def vm_delete(call: Call, spec: DeleteVm, p: dict[str, Any]) -> Any:
    from ceso.vm.lifecycle import delete_request

    request, _files = delete_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p)


_NAME = {"name": Param(S, "The VM's name.", required=True)}

VM_METHODS = [
    Method("vm.list", "List VMs (one property-collector round trip per host).", HOST, vm_list),
    Method("vm.info", "Show one VM.", {**_NAME, **HOST}, vm_info),
    job_method("vm.create", "Create a VM from a template (a job).", CreateVm, vm_create),
    job_method("vm.clone", "Clone a VM with a new identity (a job).", CloneVm, vm_clone),
    job_method("vm.power", "Power a VM on, off, reset, shut down or reboot (a job).", PowerVm, vm_power),
    job_method(
        "vm.reconfigure",
        "Change a VM's CPUs, memory, disk sizes, NIC port group or ISO in one reconfigure task (a job).",
        ReconfigureVm,
        vm_reconfigure,
    ),
    job_method(
        "vm.snapshot.create",
        "Take a snapshot of a VM; the name must be new on that VM (a job).",
        CreateSnapshot,
        vm_snapshot_create,
    ),
    Method(
        "vm.snapshot.list",
        "A VM's snapshots, parents before children (a direct read, not a job).",
        {**_NAME, **HOST},
        vm_snapshot_list,
    ),
    job_method(
        "vm.snapshot.revert",
        "Revert a VM to a snapshot; changes since are lost, the VM takes the snapshot's power state (a job).",
        RevertSnapshot,
        vm_snapshot_revert,
    ),
    job_method(
        "vm.snapshot.delete",
        "Delete a snapshot of a VM; its changes are kept in the VM (a job).",
        DeleteSnapshot,
        vm_snapshot_delete,
    ),
    job_method("vm.delete", "Delete a VM and all its files (a job; cannot be undone).", DeleteVm, vm_delete),
]
