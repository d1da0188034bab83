"""Snapshot jobs' requests (create, revert, delete) and ``vm snapshot list`` (a direct read, no job).

The builders check the names' form, that the VM exists and is not a
template, and that the snapshot named is there exactly once (create: not
there at all, since a second snapshot of that name would make it ambiguous).
The workers check again under the VM lock.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlmodel import Session

from ceso.errors import ConflictError, InvalidInputError
from ceso.jobs.request import JobRequest
from ceso.runtime import Runtime
from ceso.vm.guards import refuse_template
from ceso.vm.lifecycle import VmTarget, resolve_vm, resubmission
from ceso.vm.snapshots import MAX_DESCRIPTION, find_snapshot, flatten, validate_snapshot_name

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


def _request(kind: str, target: VmTarget, params: dict[str, Any], key: str | None) -> JobRequest:
    return JobRequest(
        kind=kind,
        host=target.host,
        target=target.name,
        params={"name": target.name, **params},
        idempotency_key=key,
    )


def snapshot_create_request(
    runtime: Runtime,
    *,
    name: str,
    snapshot: str,
    description: str,
    memory: bool,
    quiesce: bool,
    host: str | None,
    idempotency_key: str | None,
) -> JobRequest:
    """A validated ``vm.snapshot.create`` request; ConflictError if the name is taken on that VM."""
    validate_snapshot_name(snapshot)
    if len(description) > MAX_DESCRIPTION or any(
        unicodedata.category(c)[0] == "C" and c not in "\n\t" for c in description
    ):
        raise InvalidInputError(
            f"--description must be at most {MAX_DESCRIPTION} characters without control characters"
        )
    params = {"snapshot": snapshot, "description": description, "memory": memory, "quiesce": quiesce}
    again = resubmission(runtime, idempotency_key, kind="vm.snapshot.create", name=name, host=host, **params)
    if again is not None:
        return again
    target = _target(runtime, name, host)
    if any(n.name == snapshot for n in flatten(target.props.get("snapshot"))):
        raise ConflictError(
            f"VM {name!r} on host {target.host} already has a snapshot {snapshot!r}; "
            "a second one would make the name ambiguous"
        )
    return _request("vm.snapshot.create", target, params, idempotency_key)


def snapshot_revert_request(
    runtime: Runtime, *, name: str, snapshot: str, host: str | None, idempotency_key: str | None
) -> JobRequest:
    """A validated ``vm.snapshot.revert`` request (NotFoundError, ConflictError if ambiguous)."""
    validate_snapshot_name(snapshot)
    again = resubmission(
        runtime, idempotency_key, kind="vm.snapshot.revert", name=name, host=host, snapshot=snapshot
    )
    if again is not None:
        return again
    target = _target(runtime, name, host)
    find_snapshot(flatten(target.props.get("snapshot")), snapshot, vm=name, host=target.host)
    return _request("vm.snapshot.revert", target, {"snapshot": snapshot}, idempotency_key)


def snapshot_delete_request(
    runtime: Runtime,
    *,
    name: str,
    snapshot: str,
    children: bool,
    host: str | None,
    idempotency_key: str | None,
) -> JobRequest:
    """A validated ``vm.snapshot.delete`` request; ``children`` removes the snapshot's subtree too."""
    validate_snapshot_name(snapshot)
    params = {"snapshot": snapshot, "children": children}
    again = resubmission(runtime, idempotency_key, kind="vm.snapshot.delete", name=name, host=host, **params)
    if again is not None:
        return again
    target = _target(runtime, name, host)
    find_snapshot(flatten(target.props.get("snapshot")), snapshot, vm=name, host=target.host)
    return _request("vm.snapshot.delete", target, params, idempotency_key)
