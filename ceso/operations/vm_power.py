"""``vm.power``: on, off, reset (tasks), guest shutdown (with an optional power-off fallback), guest reboot.

What each action allows is in :mod:`ceso.vm.power`: asking for the state the
VM is already in succeeds with a note and changes nothing. ``shutdown`` asks
the guest and waits up to ``timeout_guest`` seconds for poweredOff; with ``force``
a refused or slow shutdown is followed by a power off, and both steps show in
the job. ``reboot`` on a host without RebootGuest fails with code
``not_supported``. On failure the VM is left in whatever state the host
reached; nothing is retried.
"""

from __future__ import annotations

from typing import Any

from ceso.backends.guest import shut_down_guest
from ceso.backends.protocol import AnyBackend
from ceso.errors import ConflictError, OperationError, TimeoutExpiredError
from ceso.jobs.context import JobContext
from ceso.operations.vm_common import inspect_vm
from ceso.plans import PowerSteps
from ceso.vm.change_specs import PowerVm
from ceso.vm.power import check_power_action


def run_vm_power(ctx: JobContext) -> dict[str, Any]:
    spec = PowerVm.from_job(ctx.params)
    name, action = spec.name, spec.action
    ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
    result: dict[str, Any] = {"name": name, "host": ctx.job.host, "action": action}
    with ctx.locks(PowerSteps.lock, vms=[name]):
        with ctx.step(PowerSteps.check, progress=10) as rec:
            vm, props = inspect_vm(ctx, ops, name, [])
            before = str(props.get("runtime.powerState"))
            note = check_power_action(action, name=name, host=ctx.job.host, state=before)
            rec["power_state"] = before
        if note is None:
            _ACTIONS[action](ctx, spec, ops, vm)
        else:
            result["note"] = note
        with ctx.step(PowerSteps.read_power_state, progress=95):
            after = ops.power_state(vm)
    return {**result, "power_state_before": before, "power_state": after, "changed": note is None}


def _on(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    with ctx.step(PowerSteps.power_on, progress=60):
        ops.power_on(vm)


def _off(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    with ctx.step(PowerSteps.power_off, progress=60):
        ops.power_off(vm)


def _reset(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    with ctx.step(PowerSteps.reset, progress=60):
        ops.reset(vm)


def _reboot(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    with ctx.step(PowerSteps.guest_reboot, progress=60):
        ops.reboot_guest(vm)


def _shutdown(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    timeout = spec.timeout_guest
    try:
        with ctx.step(PowerSteps.guest_shutdown, progress=60, details={"timeout_s": timeout}):
            shut_down_guest(ops, vm, timeout=timeout)
    except (OperationError, TimeoutExpiredError, ConflictError):
        # No tools, a hung guest or a refused call: power off only when the operator said so.
        if not spec.force:
            raise
        with ctx.step(PowerSteps.power_off_fallback, progress=80):
            if ops.power_state(vm) != "poweredOff":
                ops.power_off(vm)


_ACTIONS = {"on": _on, "off": _off, "reset": _reset, "reboot": _reboot, "shutdown": _shutdown}
