"""What earlier attempts of a create, clone or restore left on the host, and removing it.

An attempt killed with its worker cleans up nothing; the job's recorded steps (each step's start
is committed before the host is asked) say what it made or was making. A redelivered attempt
removes those leftovers first (:func:`remove_leftovers`, in its "check name" step), and so does
a job that ran out of attempts (:mod:`ceso.jobs.leftovers`), which also powers the source back on
if an attempt shut it down.

Only what carries this job's marks is removed: the VM whose ``ceso.job-id`` extraConfig is the
job's id, the directory an attempt recorded making (only while no VM of the name is registered),
and the source's snapshot named after the job. Someone else's VM of the same name is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ceso.plans import NewVmSteps, Step

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.jobs.context import JobContext

__all__ = [
    "JOB_MARKER",
    "clone_snapshot_name",
    "left_off",
    "marked_vm",
    "remove_leftovers",
    "remove_vm_leftovers",
]

#: The extraConfig key that marks a VM as made by a job (its value: the job's id).
JOB_MARKER = "ceso.job-id"


def clone_snapshot_name(job_id: str) -> str:
    """The name of a hot clone's temporary snapshot on its source (found again by a later attempt)."""
    return f"ceso-clone-{job_id[:8]}"


def left_off(steps: Sequence[dict[str, Any]], started: Step, undone: Step) -> bool:
    """True if step ``started`` ran (in any state) and no ``undone`` step succeeded after it: e.g. a
    source shut down by an attempt that died before powering it back on."""
    last = max((i for i, s in enumerate(steps) if started.matches(str(s.get("name")))), default=None)
    if last is None:
        return False
    return not any(
        undone.matches(str(s.get("name"))) and s.get("state") == "succeeded" for s in steps[last + 1 :]
    )


def marked_vm(ctx: JobContext, ops: AnyBackend, name: str) -> Any:
    """VM ``name`` if it exists and carries this job's marker, else None. Only reads."""
    if not ops.exists(name):
        return None
    vm = ops.find(name)
    extra = {o.key: o.value for o in ops.props(vm, ["config.extraConfig"]).get("config.extraConfig") or []}
    return vm if extra.get(JOB_MARKER) == ctx.job.id else None


def remove_vm_leftovers(ctx: JobContext, ops: AnyBackend, *, name: str) -> None:
    """Destroy VM ``name`` if this job made it (its marker); else delete the directory an earlier
    attempt recorded making, if any. Raises the backend's CesoErrors."""
    if ops.exists(name):
        vm = marked_vm(ctx, ops, name)
        if vm is None:
            return  # someone else's VM: the caller refuses the name
        if ops.power_state(vm) != "poweredOff":
            ops.power_off(vm)
        ops.destroy(vm)
        return
    for path in _made_directories(ctx.earlier_steps):
        ops.delete_path(path)


def _made_directories(steps: Sequence[dict[str, Any]]) -> Iterator[str]:
    seen: set[str] = set()
    for step in steps:
        path = step.get("path")
        # vm create, vm clone and backup restore declare the same step (ceso.plans).
        if (
            NewVmSteps.make_directory.matches(str(step.get("name")))
            and isinstance(path, str)
            and path not in seen
        ):
            seen.add(path)
            yield path


def remove_leftovers(
    ctx: JobContext,
    ops: AnyBackend,
    *,
    name: str,
    source_name: str | None,
    power_source_on: bool = False,
    keep_vm: bool = False,
) -> None:
    """Remove what earlier attempts of this create or clone made: the new VM or its directory, and
    the hot clone's snapshot on the source. With ``power_source_on``, power the source back on if an
    attempt shut it down and none powered it back on (a retried attempt does that itself instead).
    ``keep_vm`` leaves the new VM (a complete one the job adopts) and tidies only the source."""
    if not keep_vm:
        remove_vm_leftovers(ctx, ops, name=name)
    if source_name is None or not ops.exists(source_name):
        return
    source = ops.find(source_name)
    mine = clone_snapshot_name(ctx.job.id)
    for tree in _walk(ops.snapshot_tree(source)):
        if tree.name == mine:
            ops.remove_snapshot(tree.snapshot)
    if (
        power_source_on
        and left_off(ctx.earlier_steps, NewVmSteps.shut_down_source, NewVmSteps.power_source_back_on)
        and ops.power_state(source) == "poweredOff"
    ):
        ops.power_on(source)


def _walk(trees: Sequence[Any]) -> Iterator[Any]:
    for tree in trees:
        yield tree
        yield from _walk(list(tree.childSnapshotList or []))
