"""Keeping a VM's disks still while they are read: a temporary snapshot (hot) or a shutdown (cold).

Both are context managers whose cleanup always runs — on success, failure,
cancel, lost lock or the soft time limit — and is recorded as a job step.
Only ceso's own snapshot (named after the job) is ever removed; the user's
snapshots are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ceso.backends.guest import shut_down_or_power_off
from ceso.jobs.cleanup import always
from ceso.jobs.retry import retry_checked, retry_host
from ceso.plans import BackupSteps

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.jobs.context import JobContext

__all__ = ["remove_leftover_snapshots", "shut_down", "snapshot_name", "temporary_snapshot"]

log = logging.getLogger(__name__)


def snapshot_name(job_id: str) -> str:
    """The name of a backup job's temporary snapshot (found again by a retried attempt)."""
    return f"ceso-backup-{job_id}"


def _walk(trees: list[Any]) -> Iterator[Any]:
    for tree in trees:
        yield tree
        yield from _walk(list(tree.childSnapshotList or []))


def _mine(ctx: JobContext, ops: AnyBackend, vm: Any) -> list[Any]:
    """This job's snapshots of ``vm`` on the host now (by their name)."""
    return [t.snapshot for t in _walk(ops.snapshot_tree(vm)) if t.name == snapshot_name(ctx.job.id)]


def remove_leftover_snapshots(ctx: JobContext, ops: AnyBackend, vm: Any) -> int:
    """Remove this job's snapshot left by an earlier, killed attempt; return how many."""
    mine = _mine(ctx, ops, vm)
    if mine:
        with ctx.cleanup_step(BackupSteps.remove_leftover_snapshot, details={"count": len(mine)}):
            for snap in mine:
                ops.remove_snapshot(snap)
    return len(mine)


@contextmanager
def temporary_snapshot(ctx: JobContext, ops: AnyBackend, vm: Any, *, quiesce: bool) -> Iterator[Any]:
    """A snapshot without memory for the body (which gets its handle); removed afterwards, always.

    If removal fails after a body that went well the error is raised, so the
    job fails loudly instead of leaving an orphan silently; after a body that
    failed, the body's error stays the cause and the removal is left pending
    (:func:`ceso.jobs.cleanup.undo`). A retry of the job removes it first.
    """
    with ctx.step(
        BackupSteps.snapshot, progress=12, details={"quiesce": quiesce, "snapshot": snapshot_name(ctx.job.id)}
    ):

        def create(tried: int) -> Any:
            # Asked again after a lost answer: a snapshot of this job's name is the one asked for.
            if tried > 1 and (mine := _mine(ctx, ops, vm)):
                return mine[0]
            return ops.create_snapshot(
                vm,
                snapshot_name(ctx.job.id),
                memory=False,
                quiesce=quiesce,
                description=f"temporary snapshot of ceso backup job {ctx.job.id}; ceso removes it",
            )

        snapshot = retry_host(ctx, BackupSteps.snapshot, create)

    def remove() -> None:
        retry_checked(
            ctx,
            BackupSteps.remove_snapshot,
            lambda: ops.remove_snapshot(snapshot),
            done=lambda: not _mine(ctx, ops, vm),
        )

    with always(ctx, BackupSteps.remove_snapshot, remove):
        yield snapshot


@contextmanager
def shut_down(ctx: JobContext, ops: AnyBackend, vm: Any, *, timeout_s: float) -> Iterator[None]:
    """Guest shutdown (power off after ``timeout_s``) for the body; powered back on afterwards, always."""
    # The step's start, committed before the VM is touched, is the durable record that it was
    # running: a later attempt of a job killed meanwhile powers it back on (ceso.backup.create).
    with ctx.step(
        BackupSteps.shut_down,
        progress=12,
        details={"timeout_s": timeout_s, "power_state_before": "poweredOn"},
    ):
        # Off already when an earlier attempt shut it down: nothing to shut down now.
        if ops.power_state(vm) != "poweredOff":
            shut_down_or_power_off(ops, vm, timeout=timeout_s)

    def power_on() -> None:
        retry_checked(
            ctx,
            BackupSteps.power_back_on,
            lambda: ops.power_on(vm),
            done=lambda: ops.power_state(vm) == "poweredOn",
        )

    with always(ctx, BackupSteps.power_back_on, power_on):
        yield
