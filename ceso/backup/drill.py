"""``backup.drill``: prove a backup restores and boots, then leave nothing behind.

A drill is a restore as a new VM (:func:`ceso.backup.restore.restore`, the same steps, the same
checks: every file's sha256 is checked as it streams back, an incremental is rebuilt from its
chain) with two differences: the new VM is named ``ceso-drill-<vm>-<job id, 8>`` and its NICs
are neither connected nor connected at power on (with ``--network``, the first one is connected
to that port group, which should be isolated). Then it is powered on and must report VMware
Tools running with a green heartbeat (and with ``--network`` a guest address) within
``--boot-timeout``. Whatever happens, the VM is removed (a cleanup step: failure, cancel and time
limit run it) and, unless the drill was cancelled or refused before the restore began, its
outcome is catalogued on the backup (:mod:`ceso.backup.drills`): passed or failed, the reason,
the seconds the restore and the boot took.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ceso.backup.drills import drill_vm_name, record_drill
from ceso.backup.restore import restore
from ceso.backup.specs import DrillBackup, RestoreBackup
from ceso.db.types import utcnow
from ceso.errors import CesoError, JobCancelledError, TimeoutExpiredError
from ceso.jobs.cleanup import always, undo
from ceso.jobs.store import ClaimLostError
from ceso.plans import DrillSteps
from ceso.vm.addresses import usable_addresses

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.jobs.context import JobContext

__all__ = ["run_drill", "tools_beat"]

_POLL_S = 0.5


def tools_beat(ops: AnyBackend, vm: Any) -> bool:
    """True when VMware Tools run in ``vm`` with a green heartbeat (the SSH route reports no
    heartbeat colour: Tools running is what it can tell)."""
    row = ops.props(vm, ["guest.toolsRunningStatus", "summary.quickStats.guestHeartbeatStatus"])
    beat = row.get("summary.quickStats.guestHeartbeatStatus")
    return row.get("guest.toolsRunningStatus") == "guestToolsRunning" and beat in (None, "green")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, CesoError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def run_drill(ctx: JobContext) -> dict[str, Any]:
    """Run a ``backup.drill`` job (params: :class:`~ceso.backup.specs.DrillBackup` with the point's
    id and VM filled in, and its target, path and manifest_sha256)."""
    p = ctx.params
    spec = DrillBackup.from_job(p)
    assert spec.backup_id is not None and spec.vm is not None, "drill_request resolves the point"
    name = drill_vm_name(spec.vm, ctx.job.id)
    ops = ctx.backend()
    if spec.network:  # an unknown port group is refused before anything is made (and not a drill)
        with ctx.step(DrillSteps.check_network, changes_host=False, details={"network": spec.network}):
            ops.network(spec.network)
    started_at, t0 = utcnow(), time.monotonic()
    timings: dict[str, Any] = {"restore_s": None, "boot_s": None, "guest_ip": None}

    def record(status: str, reason: str | None) -> dict[str, Any]:
        return record_drill(
            ctx.runtime.engine,
            set_id=spec.backup_id or "",
            vm=spec.vm or "",
            host=ctx.job.host,
            job_id=ctx.job.id,
            status=status,
            reason=reason,
            network=spec.network,
            started_at=started_at,
            **timings,
        )

    try:
        restored = restore(
            ctx,
            RestoreBackup.parse({"backup_id": spec.backup_id, "as": name, "network": spec.network}),
            {**p, "no_power_on": False},
            connect_nics=1 if spec.network else 0,
        )
        timings["restore_s"] = round(time.monotonic() - t0, 3)
        booted = time.monotonic()
        vm = ops.find(name)

        def remove() -> None:
            if ops.power_state(vm) != "poweredOff":
                ops.power_off(vm)
            ops.destroy(vm)

        with always(ctx, DrillSteps.remove_vm, remove, details={"vm": name}):
            deadline = booted + spec.boot_timeout
            # Written when it starts (it may wait minutes): `job status` shows what the drill waits for.
            with ctx.step(DrillSteps.wait_heartbeat) as rec:
                _wait(
                    ctx, lambda: tools_beat(ops, vm), deadline, f"VMware Tools in {name}", "heartbeat", spec
                )
                timings["boot_s"] = round(time.monotonic() - booted, 3)
                rec.update(boot_s=timings["boot_s"])
            if spec.network:
                with ctx.step(DrillSteps.wait_ip) as rec:
                    ips: list[str] = []

                    def has_ip() -> bool:
                        ips[:] = usable_addresses(ops.guest_ips(vm), [])
                        return bool(ips)

                    _wait(
                        ctx, has_ip, deadline, f"the guest of {name}", f"IP address on {spec.network}", spec
                    )
                    timings["guest_ip"] = ips[0]
                    rec.update(guest_ip=ips[0])
    except BaseException as exc:
        if not isinstance(exc, JobCancelledError | ClaimLostError):
            reason = _reason(exc)
            undo(
                ctx,
                DrillSteps.record_outcome,
                lambda: record("failed", reason),
                cause=exc,
                details={"status": "failed"},
            )
        raise
    passed: dict[str, Any] = {}
    with ctx.cleanup_step(DrillSteps.record_outcome, details={"status": "passed"}):
        passed.update(record("passed", None))
    return {
        "drill": passed,
        "name": name,
        "backup_id": spec.backup_id,
        "vm": spec.vm,
        "host": ctx.job.host,
        "route": restored["route"],
        "removed": True,
    }


def _wait(ctx: JobContext, ready: Any, deadline: float, who: str, what: str, spec: DrillBackup) -> None:
    """Poll ``ready`` until it is true; checks for a cancel between polls; TimeoutExpiredError at
    ``deadline`` (a monotonic time)."""
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutExpiredError(
                f"{who} reported no {what} within {spec.boot_timeout:g}s of power on (--boot-timeout)"
            )
        ctx.checkpoint()
        time.sleep(_POLL_S)
