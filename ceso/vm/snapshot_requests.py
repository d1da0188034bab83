"""Snapshot jobs' requests (create, revert, delete) and ``vm snapshot list`` (a direct read, no job).

The specs (:mod:`ceso.vm.change_specs`) check the names' form; the builders, that the VM exists and is not a
template, and that the snapshot named is there exactly once (create: not
there at all, since a second snapshot of that name would make it ambiguous).
The workers check again under the VM lock.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.errors import ConflictError
from ceso.jobs.request import JobRequest
from ceso.runtime import Runtime
from ceso.specs import Spec
from ceso.vm.change_specs import CreateSnapshot, DeleteSnapshot, RevertSnapshot
from ceso.vm.guards import refuse_template
from ceso.vm.lifecycle import VmTarget, resolve_vm, resubmission
from ceso.vm.snapshots import find_snapshot, flatten

__all__ = [
    "list_snapshots",
    "snapshot_create_request",
    "snapshot_delete_request",
    "snapshot_revert_request",
]


def list_snapshots(runtime: Runtime, *, name: str, host: str | None) -> list[dict[str, Any]]:
    """Every snapshot of VM ``name``, parents first, as ``vm snapshot list --json`` shows them.

    Raises InvalidInputError, NotFoundError, ConflictError (name on several hosts).
    """
    target = resolve_vm(runtime, name, host, ["snapshot"])
    return [n.to_dict() for n in flatten(target.props.get("snapshot"))]


def _target(runtime: Runtime, name: str, host: str | None) -> VmTarget:
    target = resolve_vm(runtime, name, host, ["snapshot"])
    with Session(runtime.engine) as session:
        refuse_template(session, host=target.host, name=name, marked=target.marked_template)
    return target


def _request(spec: Spec, target: VmTarget, key: str | None) -> JobRequest:
    return JobRequest(
        kind=spec.kind, host=target.host, target=target.name, params=spec.job_params(), idempotency_key=key
    )


def snapshot_create_request(
    runtime: Runtime, spec: CreateSnapshot, *, idempotency_key: str | None
) -> JobRequest:
    """A validated ``vm.snapshot.create`` request; ConflictError if the name is taken on that VM."""
    name, snapshot = spec.name, spec.snapshot
    same = {
        "snapshot": snapshot,
        "description": spec.description,
        "memory": spec.memory,
        "quiesce": spec.quiesce,
    }
    again = resubmission(runtime, idempotency_key, kind=spec.kind, name=name, host=spec.host, **same)
    if again is not None:
        return again
    target = _target(runtime, name, spec.host)
    if any(n.name == snapshot for n in flatten(target.props.get("snapshot"))):
        raise ConflictError(
            f"VM {name!r} on host {target.host} already has a snapshot {snapshot!r}; "
            "a second one would make the name ambiguous"
        )
    return _request(spec, target, idempotency_key)


def snapshot_revert_request(
    runtime: Runtime, spec: RevertSnapshot, *, idempotency_key: str | None
) -> JobRequest:
    """A validated ``vm.snapshot.revert`` request (NotFoundError, ConflictError if ambiguous)."""
    return _existing(runtime, spec, idempotency_key)


def snapshot_delete_request(
    runtime: Runtime, spec: DeleteSnapshot, *, idempotency_key: str | None
) -> JobRequest:
    """A validated ``vm.snapshot.delete`` request; ``children`` removes the snapshot's subtree too."""
    return _existing(runtime, spec, idempotency_key, children=spec.children)


def _existing(
    runtime: Runtime, spec: RevertSnapshot | DeleteSnapshot, key: str | None, **same: Any
) -> JobRequest:
    """The request of an operation on an existing snapshot, found once by its name."""
    again = resubmission(
        runtime, key, kind=spec.kind, name=spec.name, host=spec.host, snapshot=spec.snapshot, **same
    )
    if again is not None:
        return again
    target = _target(runtime, spec.name, spec.host)
    find_snapshot(flatten(target.props.get("snapshot")), spec.snapshot, vm=spec.name, host=target.host)
    return _request(spec, target, key)
