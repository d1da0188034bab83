"""``vm.snapshot.delete``: RemoveSnapshot_Task on the one snapshot of that name (with its subtree on request).

Without ``children`` only that snapshot goes: its changes are folded into its
children (or the VM's disks) and the children move up to its parent. A
redelivered job whose earlier attempt already removed it succeeds with a note.

A transient host fault is retried with backoff (:func:`ceso.jobs.retry.retry_host`)
for the login, the reads and RemoveSnapshot_Task: a repeat first reads the VM's
snapshots and asks nothing again once the snapshot's id is gone.
"""

from __future__ import annotations

from typing import Any

from ceso.errors import NotFoundError
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_checked, retry_host
from ceso.operations.vm_common import earlier_attempt_ran, open_and_inspect, recorded
from ceso.plans import SnapshotDeleteSteps
from ceso.vm.change_specs import DeleteSnapshot
from ceso.vm.snapshots import SnapshotNode, find_snapshot, flatten, snapshots_of


def run_vm_snapshot_delete(ctx: JobContext) -> dict[str, Any]:
    spec = DeleteSnapshot.from_job(ctx.params)
    name, snapshot, children = spec.name, spec.snapshot, spec.children
    result: dict[str, Any] = {"name": name, "host": ctx.job.host, "snapshot": snapshot, "children": children}
    with ctx.locks(SnapshotDeleteSteps.lock, vms=[name]):
        with ctx.step(SnapshotDeleteSteps.check, progress=10) as rec:
            ops, vm, props = open_and_inspect(ctx, SnapshotDeleteSteps.check, name, ["snapshot"])
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
            retry_checked(
                ctx,
                SnapshotDeleteSteps.remove,
                lambda: ops.remove_snapshot(node.ref, children=children),
                done=lambda: all(n.id != node.id for n in snapshots_of(ops, vm)),
            )
        with ctx.step(SnapshotDeleteSteps.read_back, progress=95):
            nodes = retry_host(ctx, SnapshotDeleteSteps.read_back, lambda _try: snapshots_of(ops, vm))
            left = [n.name for n in nodes]
    return {**result, "removed": removed, "snapshots_left": left}


def _descendants(nodes: list[SnapshotNode], parent_id: int) -> list[str]:
    out: list[str] = []
    for n in nodes:
        if n.parent_id == parent_id:
            out += [n.name, *_descendants(nodes, n.id)]
    return out


#: The step that asks the host to remove the snapshot.
CHANGING_STEPS = (SnapshotDeleteSteps.remove,)


def read_back_removed(ctx: JobContext) -> dict[str, Any] | None:
    """The job's result if the snapshot the check found (by its id) is gone from the VM, else None.
    For :mod:`ceso.operations.reconcile`; only reads."""
    spec = DeleteSnapshot.from_job(ctx.params)
    snapshot_id = recorded(ctx.steps, SnapshotDeleteSteps.check, "snapshot_id")
    if snapshot_id is None:
        return None
    ops = ctx.backend()
    nodes = snapshots_of(ops, ops.find(spec.name))
    if any(n.id == snapshot_id for n in nodes):
        return None
    return {
        "name": spec.name,
        "host": ctx.job.host,
        "snapshot": spec.snapshot,
        "children": spec.children,
        "removed": recorded(ctx.steps, SnapshotDeleteSteps.check, "removes") or [],
        "snapshots_left": [n.name for n in nodes],
    }
