"""What a backup job's attempts left when it ran out of them, and removing it.

Each attempt cleans up after itself when it fails or is cancelled; an attempt killed with its
worker does not, and the next attempt does it first. When no attempt is left,
:func:`backup_cleanups` lists the same cleanup for :mod:`ceso.jobs.leftovers` to run: the set
marked ``failed`` and its files (``.partial`` ones too) deleted from the target, this job's
temporary snapshot removed, and a VM an attempt shut down powered back on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ceso.backup import catalog
from ceso.backup.quiesce import snapshot_name
from ceso.operations.leftovers import left_off
from ceso.plans import BackupSteps, Step

if TYPE_CHECKING:
    from ceso.jobs.context import JobContext

__all__ = ["backup_cleanups"]


def backup_cleanups(ctx: JobContext) -> list[tuple[Step, Callable[[], object]]]:
    """The cleanup steps (step, action) of a ``backup.create`` job out of attempts; each raises
    CesoErrors of its own system (SQL, the target, the host)."""
    from ceso.backup.create import set_path

    p = ctx.params
    set_id = ctx.job.id

    def discard_set() -> None:
        from ceso.backup.targets.registry import open_target

        if not catalog.fail_set(ctx.runtime.engine, set_id=set_id, error="the job ran out of attempts"):
            return  # an attempt completed the set: its files stay
        target = open_target(ctx.runtime, p["target"])
        try:
            target.delete_prefix(set_path(p["vm"], set_id) + "/")
        finally:
            target.close()

    def restore_vm() -> None:
        ops = ctx.backend()  # the host's route: the API, or SSH on a free-licensed host
        if not ops.exists(p["vm"]):
            return
        vm = ops.find(p["vm"])
        trees = list(ops.snapshot_tree(vm))
        while trees:
            tree = trees.pop()
            trees.extend(tree.childSnapshotList or [])
            if tree.name == snapshot_name(set_id):
                ops.remove_snapshot(tree.snapshot)
        if (
            left_off(ctx.earlier_steps, BackupSteps.shut_down, BackupSteps.power_back_on)
            and ops.power_state(vm) == "poweredOff"
        ):
            ops.power_on(vm)

    return [(BackupSteps.discard_set, discard_set), (BackupSteps.restore_vm, restore_vm)]
