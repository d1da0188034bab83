"""Backup and restore specs turned into validated job requests (shared by the CLI, cesod and beat).

The spec (:mod:`ceso.backup.specs`) has checked its own form; here is checked what needs
the configuration, SQL or the host — the VM's host, the target, the codec and level, the
set's state, the new VM's identity — so bad input is refused with nothing written.
"""

from __future__ import annotations

from sqlmodel import Session

from ceso.backup.codec import check_level
from ceso.backup.specs import CreateBackup, DrillBackup, RestoreBackup
from ceso.errors import ConflictError, InvalidInputError
from ceso.jobs.request import JobRequest
from ceso.runtime import Runtime
from ceso.vm.names import validate_vm_name

__all__ = ["create_request", "drill_request", "restore_request"]


def create_request(runtime: Runtime, spec: CreateBackup, *, idempotency_key: str | None) -> JobRequest:
    """A validated ``backup.create`` request: the spec with the configured defaults filled in, and
    the key id. With ``encrypt`` the master key is created if missing."""
    from ceso.backup.keys import ensure_key
    from ceso.backup.targets.registry import get_target
    from ceso.inventory import find_vm_host

    settings = runtime.settings.backups
    target = spec.target or settings.default_target
    if not target:
        raise InvalidInputError("no --target given and no backups.default_target configured")
    compress = spec.compress or settings.compression
    level = check_level(compress, spec.level if spec.level is not None else settings.level)
    with Session(runtime.engine) as session:
        get_target(session, target)
    owner = find_vm_host(runtime, spec.vm, spec.host)
    resolved = spec.model_copy(update={"target": target, "compress": compress, "level": level})
    params = resolved.job_params(key_id=ensure_key(runtime.secrets) if spec.encrypt else None)
    return JobRequest(
        kind=spec.kind, host=owner, target=spec.vm, params=params, idempotency_key=idempotency_key
    )


def restore_request(
    runtime: Runtime, spec: RestoreBackup, *, idempotency_key: str | None
) -> tuple[JobRequest, dict[str, str]]:
    """A validated ``backup.restore`` request and the decoded cloud-init documents (for previews).

    The set must be completed or verified (ConflictError) and the host known (NotFoundError);
    the spec is stored with the set's full id and the new VM's name filled in.
    """
    from ceso.backup.catalog import find_set
    from ceso.hosts.registry import get_host

    with Session(runtime.engine) as session:
        row = find_set(session, spec.backup_id)
        if row.status not in ("completed", "verified"):
            raise ConflictError(
                f"backup {row.id} is {row.status}; only completed or verified backups restore"
            )
        owner = get_host(session, spec.host or row.host).name
    vm_name = row.vm if spec.in_place or spec.as_ is None else spec.as_
    validate_vm_name(vm_name)
    documents = {} if spec.in_place else spec.guest.check(vm_name)
    # In place, the VM keeps its name: "as" stays unset (the spec refuses it with in_place).
    resolved = spec.model_copy(update={"backup_id": row.id, **({} if spec.in_place else {"as_": vm_name})})
    params = resolved.job_params(target=row.target, path=row.path, manifest_sha256=row.manifest_sha256)
    request = JobRequest(
        kind=spec.kind, host=owner, target=vm_name, params=params, idempotency_key=idempotency_key
    )
    return request, documents


def drill_request(runtime: Runtime, spec: DrillBackup, *, idempotency_key: str | None) -> JobRequest:
    """A validated ``backup.drill`` request: the point (BACKUP_ID, or the newest completed or
    verified point of ``--vm``) must be completed or verified (ConflictError) and the host known
    (NotFoundError); the spec is stored with the point's full id and VM filled in."""
    from sqlmodel import col, select

    from ceso.backup.catalog import find_set
    from ceso.db.backup_models import BackupSet
    from ceso.errors import NotFoundError
    from ceso.hosts.registry import get_host

    with Session(runtime.engine) as session:
        if spec.backup_id is not None:
            row = find_set(session, spec.backup_id)
            if spec.vm is not None and row.vm != spec.vm:
                raise InvalidInputError(f"backup {row.id} is of VM {row.vm!r}, not {spec.vm!r}")
        else:
            query = (
                select(BackupSet)
                .where(BackupSet.vm == spec.vm, *([BackupSet.host == spec.host] if spec.host else []))
                .where(col(BackupSet.status).in_(("completed", "verified")))
                .order_by(col(BackupSet.created_at).desc(), col(BackupSet.id).desc())
                .limit(1)
            )
            found = session.exec(query).first()
            if found is None:
                raise NotFoundError(f"VM {spec.vm!r} has no completed backup to drill")
            row = found
        if row.status not in ("completed", "verified"):
            raise ConflictError(f"backup {row.id} is {row.status}; only completed or verified backups drill")
        owner = get_host(session, spec.host or row.host).name
    resolved = spec.model_copy(update={"backup_id": row.id, "vm": row.vm})
    params = resolved.job_params(target=row.target, path=row.path, manifest_sha256=row.manifest_sha256)
    return JobRequest(
        kind=spec.kind, host=owner, target=row.vm, params=params, idempotency_key=idempotency_key
    )
