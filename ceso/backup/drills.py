"""The catalog of restore drills (``backup drill``): one row per drill of a set, kept after the set.

Keyword-only functions; engine passed in. :func:`record_drill` is the job's last step,
:func:`last_drills` what ``backup list`` shows beside each set, :func:`last_passed_per_vm` what
the metrics export (``ceso_backup_last_drill_success_timestamp_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ceso.db.backup_models import DRILL_OUTCOMES, BackupDrill
from ceso.db.engine import session_scope
from ceso.errors import InvalidInputError

__all__ = [
    "DRILL_PREFIX",
    "drill_to_dict",
    "drill_vm_name",
    "last_drills",
    "last_passed_per_vm",
    "record_drill",
]

DRILL_PREFIX = "ceso-drill-"


def drill_vm_name(vm: str, job_id: str) -> str:
    """The throwaway VM of a drill of ``vm`` by job ``job_id`` (within ESXi's 80 characters)."""
    return f"{DRILL_PREFIX}{vm[:60]}-{job_id[:8]}"


def record_drill(
    engine: Engine,
    *,
    set_id: str,
    vm: str,
    host: str,
    job_id: str,
    status: str,
    reason: str | None,
    network: str | None,
    restore_s: float | None,
    boot_s: float | None,
    guest_ip: str | None,
    started_at: datetime,
) -> dict[str, Any]:
    """Catalog one drill's outcome; return it as :func:`drill_to_dict` shapes it. A retried attempt
    of the same job replaces its earlier row."""
    if status not in DRILL_OUTCOMES:
        raise InvalidInputError(f"unknown drill outcome {status!r}")
    table = BackupDrill.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        session.execute(sa.delete(table).where(table.c.job_id == job_id))
        row = BackupDrill(
            set_id=set_id,
            vm=vm,
            host=host,
            job_id=job_id,
            status=status,
            reason=reason[:2000] if reason else None,
            network=network,
            restore_s=restore_s,
            boot_s=boot_s,
            guest_ip=guest_ip,
            started_at=started_at,
        )
        session.add(row)
        session.flush()
        return drill_to_dict(row)


def drill_to_dict(row: Any) -> dict[str, Any]:
    """A drill as ``backup drill --json`` and ``backup list --json`` (``last_drill``) show it."""
    return {
        "status": row.status,
        "reason": row.reason,
        "backup_id": row.set_id,
        "vm": row.vm,
        "host": row.host,
        "job_id": row.job_id,
        "network": row.network,
        "restore_s": row.restore_s,
        "boot_s": row.boot_s,
        "guest_ip": row.guest_ip,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat(),
    }


def last_drills(engine: Engine, *, set_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The newest drill of each of ``set_ids`` that has one (one query per 500 sets)."""
    ids = list(set_ids)
    table = BackupDrill.__table__  # type: ignore[attr-defined]
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            newest = (
                sa.select(table.c.set_id, sa.func.max(table.c.id).label("id"))
                .where(table.c.set_id.in_(ids[start : start + 500]))
                .group_by(table.c.set_id)
                .subquery()
            )
            query = sa.select(table).join(newest, table.c.id == newest.c.id)
            out.update((r.set_id, drill_to_dict(r)) for r in conn.execute(query))
    return out


def last_passed_per_vm(engine: Engine) -> dict[tuple[str, str], datetime | None]:
    """When each (host, VM) ever drilled last passed a drill (None: every drill of it failed)."""
    table = BackupDrill.__table__  # type: ignore[attr-defined]
    passed = sa.case((table.c.status == "passed", table.c.finished_at), else_=None)
    query = sa.select(table.c.host, table.c.vm, sa.func.max(passed, type_=table.c.finished_at.type)).group_by(
        table.c.host, table.c.vm
    )
    with engine.connect() as conn:
        return {(host, vm): when for host, vm, when in conn.execute(query)}
