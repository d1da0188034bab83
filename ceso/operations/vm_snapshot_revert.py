"""``vm.snapshot.revert``: RevertToSnapshot_Task on the one snapshot of that name.

Reverting twice is harmless, so a redelivered job simply reverts again. The
VM ends in the snapshot's power state (a snapshot without memory: powered
off, as on ESXi). Refused: an unknown or ambiguous snapshot name.

A transient host fault is retried with backoff (:func:`ceso.jobs.retry.retry_host`)
for the login, the reads and RevertToSnapshot_Task (reverting again is reverting once).
"""

from __future__ import annotations

from typing import Any

from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_host
from ceso.operations.vm_common import open_and_inspect
from ceso.plans import SnapshotRevertSteps
from ceso.vm.change_specs import RevertSnapshot
from ceso.vm.snapshots import find_snapshot, flatten


def run_vm_snapshot_revert(ctx: JobContext) -> dict[str, Any]:
    spec = RevertSnapshot.from_job(ctx.params)
    name, snapshot = spec.name, spec.snapshot
    with ctx.locks(SnapshotRevertSteps.lock, vms=[name]):
        with ctx.step(SnapshotRevertSteps.check, progress=10) as rec:
            ops, vm, props = open_and_inspect(ctx, SnapshotRevertSteps.check, name, ["snapshot"])
            node = find_snapshot(flatten(props.get("snapshot")), snapshot, vm=name, host=ctx.job.host)
            rec["snapshot_id"] = node.id
        with ctx.step(SnapshotRevertSteps.revert, progress=70, details={"snapshot_id": node.id}):
            retry_host(ctx, SnapshotRevertSteps.revert, lambda _try: ops.revert_snapshot(node.ref))
        with ctx.step(SnapshotRevertSteps.read_back, progress=95):
            power = retry_host(ctx, SnapshotRevertSteps.read_back, lambda _try: ops.power_state(vm))
    return {
        "name": name,
        "host": ctx.job.host,
        "snapshot": snapshot,
        "snapshot_id": node.id,
        "power_state": power,
    }
