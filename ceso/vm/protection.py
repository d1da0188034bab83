"""``vm protect`` / ``vm unprotect``: a SQL mark that makes ``vm delete`` refuse a VM.

No job: nothing on the host changes. The VM must exist when it is marked or
unmarked (found on ``--host`` or on the only registered host that has it), so
a typo cannot protect nothing. The mark is kept by host and VM name; it guards
against deletion only (power, reconfigure and snapshots are still allowed).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from ceso.db.bounds import text_limit
from ceso.db.engine import session_scope
from ceso.db.models import VmProtection
from ceso.errors import InvalidInputError
from ceso.runtime import Runtime
from ceso.vm.lifecycle import resolve_vm

__all__ = ["MAX_REASON", "protect_vm", "unprotect_vm"]

MAX_REASON = text_limit(VmProtection, "reason")


def _to_dict(host: str, name: str, row: VmProtection | None, *, changed: bool) -> dict[str, Any]:
    return {
        "name": name,
        "host": host,
        "protected": row is not None,
        "reason": row.reason if row is not None else None,
        "since": row.created_at.isoformat() if row is not None else None,
        "changed": changed,
    }


def protect_vm(runtime: Runtime, *, name: str, host: str | None, reason: str | None) -> dict[str, Any]:
    """Mark VM ``name`` protected (again: the reason is replaced); return the mark.

    Raises InvalidInputError (name, reason), NotFoundError (host, VM),
    ConflictError (the name is on several hosts and ``host`` is None).
    """
    if reason is not None and (len(reason) > MAX_REASON or not reason.isprintable()):
        raise InvalidInputError(f"--reason must be at most {MAX_REASON} printable characters")
    target = resolve_vm(runtime, name, host)
    query = select(VmProtection).where(VmProtection.host == target.host, VmProtection.vm_name == name)
    try:
        with session_scope(runtime.engine) as session:
            row = session.exec(query).first()
            changed = row is None or row.reason != reason
            if row is None:
                row = VmProtection(host=target.host, vm_name=name, reason=reason)
            row.reason = reason
            session.add(row)
    except sa.exc.IntegrityError:
        # Another protect of the same VM won the insert: it is protected either way.
        with session_scope(runtime.engine) as session:
            row = session.exec(query).one()
        changed = False
    return _to_dict(target.host, name, row, changed=changed)


def unprotect_vm(runtime: Runtime, *, name: str, host: str | None) -> dict[str, Any]:
    """Remove the mark of VM ``name``; a VM that was not protected is fine (``changed`` false).

    Raises InvalidInputError, NotFoundError, ConflictError as :func:`protect_vm`.
    """
    target = resolve_vm(runtime, name, host)
    with session_scope(runtime.engine) as session:
        row = session.exec(
            select(VmProtection).where(VmProtection.host == target.host, VmProtection.vm_name == name)
        ).first()
        if row is not None:
            session.delete(row)
    return _to_dict(target.host, name, None, changed=row is not None)
