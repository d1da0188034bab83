"""``vm.snapshot.create``: one CreateSnapshot_Task, refused if the name is already taken on the VM.

A redelivered job whose earlier attempt already made the snapshot succeeds
with a note instead of refusing its own snapshot. On failure the host has
made no snapshot (the task is all or nothing).

A transient host fault is retried with backoff (:func:`ceso.jobs.retry.retry_host`)
for the login, the reads and CreateSnapshot_Task: a repeat first reads the VM's
snapshots and asks nothing again once one of this job's name is there (the check
refused a name already taken, under the VM's lock).
"""

from __future__ import annotations

from typing import Any

from ceso.errors import ConflictError
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_checked, retry_host
from ceso.operations.vm_common import earlier_attempt_ran, open_and_inspect
from ceso.plans import SnapshotCreateSteps
from ceso.vm.change_specs import CreateSnapshot
from ceso.vm.snapshots import find_snapshot, flatten, snapshots_of


def run_vm_snapshot_create(ctx: JobContext) -> dict[str, Any]:
    spec = CreateSnapshot.from_job(ctx.params)
    name, snapshot = spec.name, spec.snapshot
    result: dict[str, Any] = {"name": name, "host": ctx.job.host, "snapshot": snapshot}
    with ctx.locks(SnapshotCreateSteps.lock, vms=[name]):
        with ctx.step(SnapshotCreateSteps.check, progress=10):
            ops, vm, props = open_and_inspect(ctx, SnapshotCreateSteps.check, name, ["snapshot"])
            taken = [n for n in flatten(props.get("snapshot")) if n.name == snapshot]
            done_before = bool(taken) and earlier_attempt_ran(ctx, SnapshotCreateSteps.create)
            if taken and not done_before:
                raise ConflictError(
                    f"VM {name!r} on host {ctx.job.host} already has a snapshot {snapshot!r}; "
                    "a second one would make the name ambiguous"
                )
        if done_before:
            result["note"] = "made by an earlier attempt of this job"
        else:
            with ctx.step(
                SnapshotCreateSteps.create,
                progress=60,
                details={"memory": spec.memory, "quiesce": spec.quiesce},
            ):
                retry_checked(
                    ctx,
                    SnapshotCreateSteps.create,
                    lambda: ops.create_snapshot(
                        vm, snapshot, description=spec.description, memory=spec.memory, quiesce=spec.quiesce
                    ),
                    done=lambda: any(n.name == snapshot for n in snapshots_of(ops, vm)),
                )
        with ctx.step(SnapshotCreateSteps.read_back, progress=95):
            nodes = retry_host(ctx, SnapshotCreateSteps.read_back, lambda _try: snapshots_of(ops, vm))
            made = find_snapshot(nodes, snapshot, vm=name, host=ctx.job.host)
    return {**result, **made.to_dict(), "snapshot": snapshot}


#: The step that asks the host for the snapshot.
CHANGING_STEPS = (SnapshotCreateSteps.create,)


def read_back_snapshot(ctx: JobContext) -> dict[str, Any] | None:
    """The job's result if its VM has the snapshot of the job's name (the check refused a name
    already taken), else None. For :mod:`ceso.operations.reconcile`; only reads."""
    spec = CreateSnapshot.from_job(ctx.params)
    ops = ctx.backend()
    made = [n for n in snapshots_of(ops, ops.find(spec.name)) if n.name == spec.snapshot]
    if len(made) != 1:
        return None
    return {"name": spec.name, "host": ctx.job.host, **made[0].to_dict(), "snapshot": spec.snapshot}
