"""``vm.snapshot.delete``: RemoveSnapshot_Task on the one snapshot of that name (with its subtree on request).

Without ``children`` only that snapshot goes: its changes are folded into its
children (or the VM's disks) and the children move up to its parent. A
redelivered job whose earlier attempt already removed it succeeds with a note.
"""

from __future__ import annotations

from typing import Any

from ceso.errors import NotFoundError
from ceso.jobs.context import JobContext
from ceso.operations.vm_common import earlier_attempt_ran, inspect_vm
from ceso.plans import SnapshotDeleteSteps
from ceso.vm.change_specs import DeleteSnapshot
from ceso.vm.snapshots import SnapshotNode, find_snapshot, flatten


def run_vm_snapshot_delete(ctx: JobContext) -> dict[str, Any]:
    spec = DeleteSnapshot.from_job(ctx.params)
    name, snapshot, children = spec.name, spec.snapshot, spec.children
    ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
    result: dict[str, Any] = {"name": name, "host": ctx.job.host, "snapshot": snapshot, "children": children}
    with ctx.locks(SnapshotDeleteSteps.lock, vms=[name]):
        with ctx.step(SnapshotDeleteSteps.check, progress=10) as rec:
            vm, props = inspect_vm(ctx, ops, name, ["snapshot"])
            nodes = flatten(props.get("snapshot"))
            try:
                node = find_snapshot(nodes, snapshot, vm=name, host=ctx.job.host)
            except NotFoundError:
                if not earlier_attempt_ran(ctx, SnapshotDeleteSteps.remove):
                    raise
                return {**result, "removed": [], "note": "removed by an earlier attempt of this job"}
            removed = [node.name, *(_descendants(nodes, node.id) if children else [])]
            rec.update(snapshot_id=node.id, removes=removed)
        with ctx.step(
            SnapshotDeleteSteps.remove,
            progress=70,
            details={"snapshot_id": node.id, "removeChildren": children},
        ):
            ops.remove_snapshot(node.ref, children=children)
        with ctx.step(SnapshotDeleteSteps.read_back, progress=95):
            left = [n.name for n in flatten(ops.props(vm, ["snapshot"]).get("snapshot"))]
    return {**result, "removed": removed, "snapshots_left": left}


def _descendants(nodes: list[SnapshotNode], parent_id: int) -> list[str]:
    out: list[str] = []
    for n in nodes:
        if n.parent_id == parent_id:
            out += [n.name, *_descendants(nodes, n.id)]
    return out
