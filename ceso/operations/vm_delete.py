"""``vm.delete``: destroy a VM and every file it owns (Destroy_Task), after checking again under its lock.

Refused here as in the CLI: a template, a protected VM, a VM with another job
in flight, a powered-on VM without ``force``. On failure before Destroy_Task
nothing is changed (except a power-off made with ``force``); Destroy_Task
itself is one host task. A redelivered job whose earlier attempt already
destroyed the VM succeeds with a note.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.backends.paths import split_datastore_path
from ceso.errors import ConflictError, NotFoundError
from ceso.jobs.context import JobContext
from ceso.operations.vm_common import earlier_attempt_ran, inspect_vm
from ceso.plans import DeleteSteps
from ceso.vm.change_specs import DeleteVm
from ceso.vm.guards import refuse_in_flight, refuse_protected
from ceso.vm.lifecycle import vm_files

PROPERTIES = ["summary.config.vmPathName", "config.hardware.device"]


def run_vm_delete(ctx: JobContext) -> dict[str, Any]:
    spec = DeleteVm.from_job(ctx.params)
    name, force = spec.name, spec.force
    host = ctx.job.host
    ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
    with ctx.step(DeleteSteps.inspect, progress=5):
        try:
            vmx = ops.props(ops.find(name), ["summary.config.vmPathName"])["summary.config.vmPathName"]
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
            vm, props = inspect_vm(ctx, ops, name, PROPERTIES)
            with Session(ctx.runtime.engine) as session:
                refuse_protected(session, host=host, name=name)
                refuse_in_flight(session, host=host, name=name, exclude_job=ctx.job.id)
            power = str(props.get("runtime.powerState"))
            if power != "poweredOff" and not force:
                raise ConflictError(
                    f"VM {name!r} on host {host} is {power}: power it off first or pass --force"
                )
            files = vm_files(props)
            rec.update(power_state=power, files=files)
        if power != "poweredOff":
            with ctx.step(DeleteSteps.power_off, progress=40):
                ops.power_off(vm)
        with ctx.step(DeleteSteps.destroy, progress=85, details={"files": files}):
            ops.destroy(vm)
        with ctx.step(DeleteSteps.check_folder, progress=95, details={"folder": directory}) as rec:
            # Destroy_Task leaves the folder when it holds files that are not the VM's; say so.
            left = bool(vmx_rel.rpartition("/")[0]) and ops.path_exists(directory)
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
