"""``vm.power``: on, off, reset (tasks), guest shutdown (with an optional power-off fallback), guest reboot.

What each action allows is in :mod:`ceso.vm.power`: asking for the state the
VM is already in succeeds with a note and changes nothing. ``shutdown`` asks
the guest and waits up to ``timeout_guest`` seconds for poweredOff; with ``force``
a refused or slow shutdown is followed by a power off, and both steps show in
the job. ``reboot`` on a host without RebootGuest fails with code
``not_supported``. On failure the VM is left in whatever state the host
reached.

A transient host fault (the connection lost or refused) is retried with backoff
(:func:`ceso.jobs.retry.retry_host`) for the login and reads, and for on, off,
guest shutdown and the fallback power off: a repeat first reads the power state
and asks nothing again once the VM is in the state asked for. A reset or a guest
reboot is not repeated (a second one would restart the guest again): its fault
fails the job at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ceso.backends.guest import shut_down_guest
from ceso.backends.protocol import AnyBackend
from ceso.errors import ConflictError, OperationError, TimeoutExpiredError
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_checked, retry_host
from ceso.operations.vm_common import open_and_inspect, recorded
from ceso.plans import PowerSteps
from ceso.vm.change_specs import PowerVm
from ceso.vm.power import check_power_action


def run_vm_power(ctx: JobContext) -> dict[str, Any]:
    spec = PowerVm.from_job(ctx.params)
    name, action = spec.name, spec.action
    result: dict[str, Any] = {"name": name, "host": ctx.job.host, "action": action}
    with ctx.locks(PowerSteps.lock, vms=[name]):
        with ctx.step(PowerSteps.check, progress=10) as rec:
            ops, vm, props = open_and_inspect(ctx, PowerSteps.check, name, [])
            before = str(props.get("runtime.powerState"))
            note = check_power_action(action, name=name, host=ctx.job.host, state=before)
            rec["power_state"] = before
        if note is None:
            _ACTIONS[action](ctx, spec, ops, vm)
        else:
            result["note"] = note
        with ctx.step(PowerSteps.read_power_state, progress=95):
            after = retry_host(ctx, PowerSteps.read_power_state, lambda _try: ops.power_state(vm))
    return {**result, "power_state_before": before, "power_state": after, "changed": note is None}


def _on(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    with ctx.step(PowerSteps.power_on, progress=60):
        retry_checked(ctx, PowerSteps.power_on, lambda: ops.power_on(vm), done=_is(ops, vm, "poweredOn"))


def _off(ctx: JobContext, spec: PowerVm, ops: AnyBackend, vm: Any) -> None:
    with ctx.step(PowerSteps.power_off, progress=60):
        retry_checked(ctx, PowerSteps.power_off, lambda: ops.power_off(vm), done=_is(ops, vm, "poweredOff"))


def _is(ops: AnyBackend, vm: Any, state: str) -> Callable[[], bool]:
    """A repeat's check: the VM is in ``state`` already (the lost answer's request was carried out)."""
    return lambda: ops.power_state(vm) == state


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
            retry_checked(
                ctx,
                PowerSteps.guest_shutdown,
                lambda: shut_down_guest(ops, vm, timeout=timeout),
                done=_is(ops, vm, "poweredOff"),
            )
    except (OperationError, TimeoutExpiredError, ConflictError):
        # No tools, a hung guest or a refused call: power off only when the operator said so.
        if not spec.force:
            raise
        with ctx.step(PowerSteps.power_off_fallback, progress=80):
            retry_checked(
                ctx,
                PowerSteps.power_off_fallback,
                lambda: ops.power_off(vm),
                done=_is(ops, vm, "poweredOff"),
                first_checks=True,  # the guest may have stopped by now
            )


_ACTIONS = {"on": _on, "off": _off, "reset": _reset, "reboot": _reboot, "shutdown": _shutdown}


#: The state each action leaves the VM in, when it can be read back (a reset or a guest reboot
#: leaves it on, as it was: nothing tells that it happened).
TARGET_STATE = {"on": "poweredOn", "off": "poweredOff", "shutdown": "poweredOff"}
#: The steps that ask the host to change the VM's power.
CHANGING_STEPS = (
    PowerSteps.power_on,
    PowerSteps.power_off,
    PowerSteps.guest_shutdown,
    PowerSteps.power_off_fallback,
)


def read_back_power(ctx: JobContext) -> dict[str, Any] | None:
    """The job's result if its VM is in the state its action leads to (read from the host), else None.

    For :mod:`ceso.operations.reconcile`; only reads."""
    spec = PowerVm.from_job(ctx.params)
    want = TARGET_STATE.get(spec.action)
    if want is None:
        return None
    ops = ctx.backend()
    state = ops.power_state(ops.find(spec.name))
    if state != want:
        return None
    before = recorded(ctx.steps, PowerSteps.check, "power_state")
    return {
        "name": spec.name,
        "host": ctx.job.host,
        "action": spec.action,
        "power_state_before": before,
        "power_state": state,
        "changed": True,
    }
