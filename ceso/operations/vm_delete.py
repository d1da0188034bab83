"""``vm.delete``: destroy a VM and every file it owns (Destroy_Task), after checking again under its lock.

Refused here as in the CLI: a template, a protected VM, a VM with another job
in flight, a powered-on VM without ``force``. On failure before Destroy_Task
nothing is changed (except a power-off made with ``force``); Destroy_Task
itself is one host task. A redelivered job whose earlier attempt already
destroyed the VM succeeds with a note.

A transient host fault (the connection lost or refused) is retried with backoff
(:func:`ceso.jobs.retry.retry_host`) for the login, the reads, the power-off (a
repeat asks nothing once the VM is off) and Destroy_Task: a repeat first looks
the VM up again and asks nothing once no VM of that name and BIOS UUID is
registered (the name is locked; the UUID was read under the lock).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.backends.paths import split_datastore_path
from ceso.backends.protocol import AnyBackend
from ceso.errors import ConflictError, NotFoundError
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_checked, retry_host
from ceso.operations.vm_common import earlier_attempt_ran, inspect_vm, recorded
from ceso.plans import DeleteSteps
from ceso.vm.change_specs import DeleteVm
from ceso.vm.guards import refuse_in_flight, refuse_protected
from ceso.vm.lifecycle import vm_files

PROPERTIES = ["summary.config.vmPathName", "config.hardware.device", "config.uuid"]


def run_vm_delete(ctx: JobContext) -> dict[str, Any]:
    spec = DeleteVm.from_job(ctx.params)
    name, force = spec.name, spec.force
    host = ctx.job.host
    with ctx.step(DeleteSteps.inspect, progress=5):

        def read(_try: int) -> tuple[AnyBackend, str]:
            ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
            return ops, ops.props(ops.find(name), ["summary.config.vmPathName"])["summary.config.vmPathName"]

        try:
            ops, vmx = retry_host(ctx, DeleteSteps.inspect, read)
        except NotFoundError:
            if earlier_attempt_ran(ctx, DeleteSteps.destroy):
                return {
                    "name": name,
                    "host": host,
                    "deleted": True,
                    "note": "deleted by an earlier attempt of this job",
                }
            raise
        datastore, vmx_rel = split_datastore_path(vmx)
    directory = f"[{datastore}] {vmx_rel.rpartition('/')[0]}"
    with ctx.locks(DeleteSteps.lock, vms=[name], datastores=[datastore]):
        with ctx.step(DeleteSteps.check, progress=15) as rec:
            vm, props = retry_host(
                ctx, DeleteSteps.check, lambda _try: inspect_vm(ctx, ops, name, PROPERTIES)
            )
            with Session(ctx.runtime.engine) as session:
                refuse_protected(session, host=host, name=name)
                refuse_in_flight(session, host=host, name=name, exclude_job=ctx.job.id)
            power = str(props.get("runtime.powerState"))
            if power != "poweredOff" and not force:
                raise ConflictError(
                    f"VM {name!r} on host {host} is {power}: power it off first or pass --force"
                )
            files = vm_files(props)
            uuid = props.get("config.uuid")
            rec.update(power_state=power, files=files, uuid=uuid)
        if power != "poweredOff":
            with ctx.step(DeleteSteps.power_off, progress=40):
                retry_checked(
                    ctx,
                    DeleteSteps.power_off,
                    lambda: ops.power_off(vm),
                    done=lambda: ops.power_state(vm) == "poweredOff",
                )
        with ctx.step(DeleteSteps.destroy, progress=85, details={"files": files}):
            retry_checked(
                ctx, DeleteSteps.destroy, lambda: ops.destroy(vm), done=lambda: vm_gone(ops, name, uuid)
            )
        with ctx.step(DeleteSteps.check_folder, progress=95, details={"folder": directory}) as rec:
            # Destroy_Task leaves the folder when it holds files that are not the VM's; say so.
            left = retry_host(
                ctx,
                DeleteSteps.check_folder,
                lambda _try: bool(vmx_rel.rpartition("/")[0]) and ops.path_exists(directory),
            )
            rec["folder_left"] = left
    result: dict[str, Any] = {
        "name": name,
        "host": host,
        "deleted": True,
        "powered_off": power != "poweredOff",
        "files": files,
        "folder": directory,
        "folder_removed": not left,
    }
    if left:
        result["note"] = f"{directory} still holds files that were not the VM's; they were left alone"
    return result


def vm_gone(ops: AnyBackend, name: str, uuid: Any) -> bool:
    """No VM ``name`` with BIOS UUID ``uuid`` is registered on the host (one of that name with
    another UUID is not the one this job deletes). Only reads."""
    if not ops.exists(name):
        return True
    return uuid is not None and ops.props(ops.find(name), ["config.uuid"]).get("config.uuid") != uuid


#: The step that asks the host to delete the VM.
CHANGING_STEPS = (DeleteSteps.destroy,)


def read_back_delete(ctx: JobContext) -> dict[str, Any] | None:
    """The job's result if its VM (the name and BIOS UUID the check read) is gone from the host,
    else None. For :mod:`ceso.operations.reconcile`; only reads."""
    spec = DeleteVm.from_job(ctx.params)
    ops = ctx.backend()
    if not vm_gone(ops, spec.name, recorded(ctx.steps, DeleteSteps.check, "uuid")):
        return None
    power = recorded(ctx.steps, DeleteSteps.check, "power_state")
    return {
        "name": spec.name,
        "host": ctx.job.host,
        "deleted": True,
        "powered_off": power not in (None, "poweredOff"),
        "files": recorded(ctx.steps, DeleteSteps.check, "files") or [],
    }
