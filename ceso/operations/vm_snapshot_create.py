"""``vm.snapshot.create``: one CreateSnapshot_Task, refused if the name is already taken on the VM.

A redelivered job whose earlier attempt already made the snapshot succeeds
with a note instead of refusing its own snapshot. On failure the host has
made no snapshot (the task is all or nothing).
"""

from __future__ import annotations

from typing import Any

from ceso.errors import ConflictError
from ceso.jobs.context import JobContext
from ceso.operations.vm_common import earlier_attempt_ran, inspect_vm
from ceso.plans import SnapshotCreateSteps
from ceso.vm.change_specs import CreateSnapshot
from ceso.vm.snapshots import find_snapshot, flatten


def run_vm_snapshot_create(ctx: JobContext) -> dict[str, Any]:
    spec = CreateSnapshot.from_job(ctx.params)
    name, snapshot = spec.name, spec.snapshot
    ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
    result: dict[str, Any] = {"name": name, "host": ctx.job.host, "snapshot": snapshot}
    with ctx.locks(SnapshotCreateSteps.lock, vms=[name]):
        with ctx.step(SnapshotCreateSteps.check, progress=10):
            vm, props = inspect_vm(ctx, ops, name, ["snapshot"])
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
                ops.create_snapshot(
                    vm, snapshot, description=spec.description, memory=spec.memory, quiesce=spec.quiesce
                )
        with ctx.step(SnapshotCreateSteps.read_back, progress=95):
            made = find_snapshot(
                flatten(ops.props(vm, ["snapshot"]).get("snapshot")), snapshot, vm=name, host=ctx.job.host
            )
    return {**result, **made.to_dict(), "snapshot": snapshot}
