"""What ``ceso schedule list`` shows: each configured schedule, its last firing and its next one."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from ceso.beat import fires
from ceso.beat.leader import GRACE_S

if TYPE_CHECKING:
    from ceso.beat.entries import ScheduleEntry
    from ceso.db.schedule_models import ScheduleFire
    from ceso.runtime import Runtime

__all__ = ["schedule_status"]


def schedule_status(
    runtime: Runtime,
    entries: list[ScheduleEntry],
    *,
    now: datetime,
    known_since: dict[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """One dict per entry: ``schedule``, ``cron``, ``last_slot``, ``last_fired_at``, ``last_state``
    (``sending``/``sent``/``done``/``failed``, None if never fired), ``last_outcome`` (the worker's
    summary, and the states of the jobs it made), ``next_slot`` and ``overdue`` (a due slot older
    than the grace was not fired: no ``ceso beat`` led then). A schedule that never fired is overdue
    only when ``known_since`` says since when the caller has known it and a slot after that passed
    unfired (a schedule may have been added after its last slot)."""
    last = fires.last_fires(runtime.engine)
    job_ids = [j for fire in last.values() for j in fire.job_ids]
    states = _job_states(runtime, job_ids)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        fire = last.get(entry.key)
        due = entry.cron.latest(now)
        since = fire.slot if fire is not None else (known_since or {}).get(entry.key)
        overdue = (
            since is not None and due is not None and since < due and (now - due).total_seconds() > GRACE_S
        )
        rows.append(
            {
                "schedule": entry.key,
                "cron": entry.cron.expr,
                "last_slot": fire.slot.isoformat() if fire else None,
                "last_fired_at": fire.fired_at.isoformat() if fire else None,
                "last_state": fire.state if fire else None,
                "last_outcome": _outcome(fire, states) if fire else None,
                "next_slot": entry.cron.next_after(now).isoformat(),
                "overdue": overdue,
            }
        )
    return rows


def _outcome(fire: ScheduleFire, states: dict[str, str]) -> str | None:
    if not fire.job_ids:
        return fire.outcome
    counts: dict[str, int] = {}
    for job_id in fire.job_ids:
        state = states.get(job_id, "unknown")
        counts[state] = counts.get(state, 0) + 1
    jobs = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"{fire.outcome}: {jobs}" if fire.outcome else jobs


def _job_states(runtime: Runtime, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    from ceso.db.models import Job

    with Session(runtime.engine) as session:
        rows = session.exec(select(Job.id, Job.state).where(col(Job.id).in_(ids)))
        return {str(i): str(s) for i, s in rows}
