"""Refusals shared by the request builders (before a job exists) and the workers (again, under the lock).

A check made only in the CLI would race with whatever happens between submit
and run, so each VM job asks these again in its worker while it holds the VM
lock. They read SQL only, write nothing, and raise:

* :func:`refuse_template` — ConflictError (exit 5) for a registered template
  (the ``templates`` table) or a VM vSphere marks as a template;
* :func:`refuse_protected` — NotPermittedError (exit 3) for a VM marked by
  ``ceso vm protect``;
* :func:`refuse_in_flight` — ConflictError (exit 5) when another job that
  targets the VM, or copies from it, is queued or running.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from ceso.db.models import Job, Template, VmProtection
from ceso.errors import ConflictError, NotPermittedError

__all__ = ["IN_FLIGHT", "jobs_in_flight", "refuse_in_flight", "refuse_protected", "refuse_template"]

IN_FLIGHT = ("queued", "running")


def refuse_template(session: Session, *, host: str, name: str, marked: bool = False) -> None:
    """ConflictError if VM ``name`` on ``host`` is a registered template or ``marked`` as one in vSphere."""
    row = session.exec(select(Template).where(Template.host == host, Template.name == name)).first()
    if row is not None:
        raise ConflictError(
            f"VM {name!r} on host {host} is a registered template; "
            f"forget it first with `ceso template remove {name} --host {host}`"
        )
    if marked:
        raise ConflictError(f"VM {name!r} on host {host} is marked as a template in vSphere")


def refuse_protected(session: Session, *, host: str, name: str) -> None:
    """NotPermittedError if ``ceso vm protect`` marked VM ``name`` on ``host``."""
    row = session.exec(
        select(VmProtection).where(VmProtection.host == host, VmProtection.vm_name == name)
    ).first()
    if row is not None:
        why = f" ({row.reason})" if row.reason else ""
        raise NotPermittedError(
            f"VM {name!r} on host {host} is protected{why}; run `ceso vm unprotect {name}` first"
        )


def jobs_in_flight(
    session: Session,
    *,
    host: str,
    name: str,
    exclude_job: str | None = None,
) -> list[Job]:
    """Queued or running jobs on ``host`` that target VM ``name`` or use it as their source.

    ``exclude_job`` is the asking job itself (a worker re-checking).
    """
    rows = session.exec(
        select(Job).where(Job.host == host, col(Job.state).in_(IN_FLIGHT)).order_by(col(Job.created_at))
    ).all()
    # The source of a clone lives in params (JSON); filtering it in Python works the same on both databases.
    return [
        job
        for job in rows
        if (job.target == name or (job.params or {}).get("source") == name) and job.id != exclude_job
    ]


def refuse_in_flight(
    session: Session,
    *,
    host: str,
    name: str,
    exclude_job: str | None = None,
) -> None:
    """ConflictError naming the other jobs if any is queued or running on VM ``name``."""
    others = jobs_in_flight(session, host=host, name=name, exclude_job=exclude_job)
    if others:
        listed = ", ".join(f"{j.kind} {j.id} ({j.state})" for j in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        raise ConflictError(
            f"VM {name!r} on host {host} has another job in flight: {listed}{more}; "
            "wait for it or cancel it (`ceso job cancel ID`)"
        )
