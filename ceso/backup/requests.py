"""Backup and restore options turned into validated job requests (shared by the CLI and cesod).

Everything checkable before a job exists is checked here — the VM's host, the
target, the codec and level, the set's state, the new VM's name and identity
options — so bad input is refused with nothing written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from ceso.backup.codec import check_level
from ceso.errors import ConflictError, InvalidInputError
from ceso.jobs.request import JobRequest

if TYPE_CHECKING:
    from ceso.runtime import Runtime
    from ceso.vm.requests import GuestOptions

__all__ = ["create_request", "restore_request"]


def create_request(
    runtime: Runtime,
    *,
    vm: str,
    host: str | None,
    target: str | None,
    compression: str | None,
    level: int | None,
    mode: str | None,
    encrypt: bool,
    idempotency_key: str | None,
) -> JobRequest:
    """A validated ``backup.create`` request. With ``encrypt`` the master key is created if missing."""
    from ceso.backup.keys import ensure_key
    from ceso.backup.targets.registry import get_target
    from ceso.inventory import find_vm_host
    from ceso.vm.names import validate_vm_name

    settings = runtime.settings.backups
    validate_vm_name(vm)
    target = target or settings.default_target
    if not target:
        raise InvalidInputError("no --target given and no backups.default_target configured")
    compression = compression or settings.compression
    level = check_level(compression, level if level is not None else settings.level)
    if mode not in (None, "hot", "cold"):
        raise InvalidInputError("mode must be hot or cold")
    with Session(runtime.engine) as session:
        get_target(session, target)
    owner = find_vm_host(runtime, vm, host)
    params: dict[str, Any] = {
        "vm": vm,
        "target": target,
        "compression": compression,
        "level": level,
        "mode": mode,
        "key_id": ensure_key(runtime.secrets) if encrypt else None,
    }
    return JobRequest(
        kind="backup.create", host=owner, target=vm, params=params, idempotency_key=idempotency_key
    )


def restore_request(
    runtime: Runtime,
    *,
    backup_id: str,
    name: str | None,
    host: str | None,
    datastore: str | None,
    network: str | None,
    guest: GuestOptions,
    power_on: bool,
    idempotency_key: str | None,
    in_place: bool = False,
) -> tuple[JobRequest, dict[str, str]]:
    """A validated ``backup.restore`` request and the decoded cloud-init documents (for previews).

    ``in_place`` restores over the original VM: ``name`` must be None, and identity,
    network and placement options are refused (the VM keeps its own).
    """
    from ceso.backup.catalog import find_set
    from ceso.hosts.registry import get_host
    from ceso.vm.guest import GuestSpec
    from ceso.vm.names import validate_vm_name
    from ceso.vm.requests import guest_spec

    spec = guest_spec(guest)
    if in_place:
        if name is not None or datastore or network or host or spec != GuestSpec():
            raise InvalidInputError(
                "--in-place keeps the VM's name, host, disks and identity: drop --as and the other options"
            )
    elif name is None:
        raise InvalidInputError(
            "give the new VM's name with --as NAME, or restore over the original with --in-place"
        )
    with Session(runtime.engine) as session:
        row = find_set(session, backup_id)
        if row.status not in ("completed", "verified"):
            raise ConflictError(
                f"backup {row.id} is {row.status}; only completed or verified backups restore"
            )
        owner = get_host(session, host or row.host).name
    vm_name = row.vm if in_place or name is None else name
    validate_vm_name(vm_name)
    documents = {} if in_place else spec.check(vm_name)
    params: dict[str, Any] = {
        "backup_id": row.id,
        "target": row.target,
        "path": row.path,
        "manifest_sha256": row.manifest_sha256,
        "name": vm_name,
        "datastore": datastore,
        "network": network,
        "guest": spec.to_params(),
        "power_on": power_on,
        "in_place": in_place,
    }
    request = JobRequest(
        kind="backup.restore", host=owner, target=vm_name, params=params, idempotency_key=idempotency_key
    )
    return request, documents
