"""``vm.reconfigure``: every requested change in one ReconfigVM_Task, planned again under the VM lock.

See :mod:`ceso.vm.hardware` for the rules. Either the whole spec applies or
the host refuses it and nothing changes; a request equal to the VM's current
state sends nothing and succeeds with ``changed`` false.

A transient host fault is retried with backoff (:func:`ceso.jobs.retry.retry_host`)
for the login, the reads and ReconfigVM_Task: every change names a target value
(CPUs, memory, a disk's size, a NIC's network, an ISO), so a repeat reads the VM
again and plans again, and asks nothing once every target value is set.
"""

from __future__ import annotations

from typing import Any

from ceso.backends.protocol import AnyBackend
from ceso.errors import NotFoundError
from ceso.esxi.inventory import vm_summary
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_host
from ceso.operations.vm_common import inspect_vm, recorded
from ceso.plans import ReconfigureSteps
from ceso.vm.change_specs import ReconfigureVm
from ceso.vm.hardware import HARDWARE_PROPERTIES, ReconfigurePlan, plan_reconfigure

READ_BACK = ["name", "config.hardware.numCPU", "config.hardware.memoryMB", "config.hardware.device"]


def run_vm_reconfigure(ctx: JobContext) -> dict[str, Any]:
    spec = ReconfigureVm.from_job(ctx.params)
    name = spec.name
    with ctx.locks(ReconfigureSteps.lock, vms=[name]):
        with ctx.step(ReconfigureSteps.plan, progress=20) as rec:

            def read(_try: int) -> tuple[AnyBackend, Any, ReconfigurePlan]:
                ops = ctx.backend()  # the route the host's record declares; SSH can only grow disks
                vm, plan = _plan(ctx, ops, spec)
                return ops, vm, plan

            ops, vm, plan = retry_host(ctx, ReconfigureSteps.plan, read)
            rec.update(changes=plan.changes, unchanged=plan.unchanged)
        if plan.spec is not None:
            with ctx.step(ReconfigureSteps.reconfigure, progress=80):

                def reconfigure(tried: int) -> None:
                    # Asked again after a lost answer: planned again from what the VM has now.
                    todo = _plan(ctx, ops, spec)[1] if tried > 1 else plan
                    if todo.spec is not None:
                        ops.reconfigure(vm, todo.spec, what="; ".join(todo.changes))

                retry_host(ctx, ReconfigureSteps.reconfigure, reconfigure)
        with ctx.step(ReconfigureSteps.read_back, progress=95):
            now = retry_host(
                ctx,
                ReconfigureSteps.read_back,
                lambda _try: vm_summary(ctx.job.host, ops.props(vm, READ_BACK)),
            )
    return _result(ctx, plan, now)


def _result(ctx: JobContext, plan: ReconfigurePlan, now: Any) -> dict[str, Any]:
    return {
        "name": ReconfigureVm.from_job(ctx.params).name,
        "host": ctx.job.host,
        "changed": plan.spec is not None,
        "changes": plan.changes,
        "unchanged": plan.unchanged,
        "cpus": now.cpus,
        "memory_mb": now.memory_mb,
        "disks": [{"path": d.path, "capacity_bytes": d.capacity_bytes} for d in now.disks],
        "nics": [{"mac": n.mac, "network": n.network} for n in now.nics],
    }


def _plan(ctx: JobContext, ops: AnyBackend, spec: ReconfigureVm) -> tuple[Any, ReconfigurePlan]:
    """Read VM ``spec.name`` (again) and plan its changes against what it has now; only reads."""
    changes = spec.changes
    vm, props = inspect_vm(ctx, ops, spec.name, HARDWARE_PROPERTIES)
    networks = ops.networks(want=changes.network) if changes.network is not None else []
    if changes.iso is not None and not ops.path_exists(changes.iso):
        raise NotFoundError(f"no file {changes.iso} on host {ctx.job.host}")
    return vm, plan_reconfigure(props, changes, networks=networks, host=ctx.job.host, name=spec.name)


#: The step that asks the host to change the VM.
CHANGING_STEPS = (ReconfigureSteps.reconfigure,)


def read_back_reconfigured(ctx: JobContext) -> dict[str, Any] | None:
    """The job's result if every value it asked for is set on the VM (planned again: nothing left to
    change), else None. For :mod:`ceso.operations.reconcile`; only reads."""
    spec = ReconfigureVm.from_job(ctx.params)
    ops = ctx.backend()
    vm, again = _plan(ctx, ops, spec)
    if again.spec is not None:
        return None
    asked = ReconfigurePlan(
        spec=True,  # it changed: the first plan's changes are the job's
        changes=recorded(ctx.steps, ReconfigureSteps.plan, "changes") or [],
        unchanged=recorded(ctx.steps, ReconfigureSteps.plan, "unchanged") or [],
    )
    return _result(ctx, asked, vm_summary(ctx.job.host, ops.props(vm, READ_BACK)))
