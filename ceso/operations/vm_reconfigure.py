"""``vm.reconfigure``: every requested change in one ReconfigVM_Task, planned again under the VM lock.

See :mod:`ceso.vm.hardware` for the rules. Either the whole spec applies or
the host refuses it and nothing changes; a request equal to the VM's current
state sends nothing and succeeds with ``changed`` false.
"""

from __future__ import annotations

from typing import Any

from ceso.errors import NotFoundError
from ceso.esxi.inventory import vm_summary
from ceso.jobs.context import JobContext
from ceso.operations.vm_common import inspect_vm
from ceso.plans import ReconfigureSteps
from ceso.vm.change_specs import ReconfigureVm
from ceso.vm.hardware import HARDWARE_PROPERTIES, plan_reconfigure

READ_BACK = ["name", "config.hardware.numCPU", "config.hardware.memoryMB", "config.hardware.device"]


def run_vm_reconfigure(ctx: JobContext) -> dict[str, Any]:
    spec = ReconfigureVm.from_job(ctx.params)
    name, changes = spec.name, spec.changes
    ops = ctx.backend()  # the route the host's record declares; SSH can only grow disks
    with ctx.locks(ReconfigureSteps.lock, vms=[name]):
        with ctx.step(ReconfigureSteps.plan, progress=20) as rec:
            vm, props = inspect_vm(ctx, ops, name, HARDWARE_PROPERTIES)
            networks = ops.networks(want=changes.network) if changes.network is not None else []
            if changes.iso is not None and not ops.path_exists(changes.iso):
                raise NotFoundError(f"no file {changes.iso} on host {ctx.job.host}")
            plan = plan_reconfigure(props, changes, networks=networks, host=ctx.job.host, name=name)
            rec.update(changes=plan.changes, unchanged=plan.unchanged)
        if plan.spec is not None:
            with ctx.step(ReconfigureSteps.reconfigure, progress=80):
                ops.reconfigure(vm, plan.spec, what="; ".join(plan.changes))
        with ctx.step(ReconfigureSteps.read_back, progress=95):
            now = vm_summary(ctx.job.host, ops.props(vm, READ_BACK))
    return {
        "name": name,
        "host": ctx.job.host,
        "changed": plan.spec is not None,
        "changes": plan.changes,
        "unchanged": plan.unchanged,
        "cpus": now.cpus,
        "memory_mb": now.memory_mb,
        "disks": [{"path": d.path, "capacity_bytes": d.capacity_bytes} for d in now.disks],
        "nics": [{"mac": n.mac, "network": n.network} for n in now.nics],
    }
