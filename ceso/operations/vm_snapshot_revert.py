"""``vm.snapshot.revert``: RevertToSnapshot_Task on the one snapshot of that name.

Reverting twice is harmless, so a redelivered job simply reverts again. The
VM ends in the snapshot's power state (a snapshot without memory: powered
off, as on ESXi). Refused: an unknown or ambiguous snapshot name.
"""

from __future__ import annotations

from typing import Any

from ceso.jobs.context import JobContext
from ceso.operations.vm_common import inspect_vm
from ceso.plans import SnapshotRevertSteps
from ceso.vm.change_specs import RevertSnapshot
from ceso.vm.snapshots import find_snapshot, flatten


def run_vm_snapshot_revert(ctx: JobContext) -> dict[str, Any]:
    spec = RevertSnapshot.from_job(ctx.params)
    name, snapshot = spec.name, spec.snapshot
    ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
    with ctx.locks(SnapshotRevertSteps.lock, vms=[name]):
        with ctx.step(SnapshotRevertSteps.check, progress=10) as rec:
            vm, props = inspect_vm(ctx, ops, name, ["snapshot"])
            node = find_snapshot(flatten(props.get("snapshot")), snapshot, vm=name, host=ctx.job.host)
            rec["snapshot_id"] = node.id
        with ctx.step(SnapshotRevertSteps.revert, progress=70, details={"snapshot_id": node.id}):
            ops.revert_snapshot(node.ref)
        with ctx.step(SnapshotRevertSteps.read_back, progress=95):
            power = ops.power_state(vm)
    return {
        "name": name,
        "host": ctx.job.host,
        "snapshot": snapshot,
        "snapshot_id": node.id,
        "power_state": power,
    }
