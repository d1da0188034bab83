"""The scheduler's SQL record (``schedule_fires``): claim a slot once, mark it sent, report it.

Every function takes the engine and commits its own short transaction. SQLAlchemy errors other
than the unique-slot conflict propagate (the scheduler treats them as a failed tick and retries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ceso.db.engine import session_scope
from ceso.db.schedule_models import ScheduleFire
from ceso.db.types import utcnow

__all__ = ["claim_slot", "last_fires", "mark_sent", "record_outcome", "unsent"]


def claim_slot(engine: Engine, schedule: str, slot: datetime, *, leader: str) -> int | None:
    """Record that ``leader`` fires ``schedule`` at ``slot`` (state ``sending``); its row id, or
    None if the slot was fired already (by this or another beat)."""
    try:
        with session_scope(engine) as session:
            fire = ScheduleFire(schedule=schedule, slot=slot, leader=leader)
            session.add(fire)
            session.flush()
            assert fire.id is not None
            return fire.id
    except sa.exc.IntegrityError:
        return None


def mark_sent(engine: Engine, fire_id: int) -> None:
    """The slot's message is on the queue (only a ``sending`` row moves: a fast worker may have
    reported its outcome already)."""
    with session_scope(engine) as session:
        session.execute(
            sa.update(ScheduleFire)
            .where(col(ScheduleFire.id) == fire_id, col(ScheduleFire.state) == "sending")
            .values(state="sent")
        )


def unsent(engine: Engine, *, before: datetime) -> list[ScheduleFire]:
    """Rows still ``sending`` that were fired before ``before``: their message may be lost."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(ScheduleFire).where(ScheduleFire.state == "sending", col(ScheduleFire.fired_at) < before)
        )
        return list(rows)


def last_fires(engine: Engine) -> dict[str, ScheduleFire]:
    """The newest fired slot of every schedule that has fired."""
    with session_scope(engine) as session:
        newest = (
            select(ScheduleFire.schedule, sa.func.max(ScheduleFire.slot).label("slot"))
            .group_by(col(ScheduleFire.schedule))
            .subquery()
        )
        rows = session.exec(
            select(ScheduleFire).join(
                newest,
                sa.and_(
                    col(ScheduleFire.schedule) == newest.c.schedule, col(ScheduleFire.slot) == newest.c.slot
                ),
            )
        )
        return {row.schedule: row for row in rows}


def record_outcome(
    engine: Engine, fire_id: int, *, ok: bool, outcome: str, job_ids: list[str] | None = None
) -> None:
    """The worker's word on a fired slot: ``done`` or ``failed``, a one-line outcome, the jobs it made."""
    values: dict[str, Any] = {
        "state": "done" if ok else "failed",
        "outcome": outcome[:500],
        "finished_at": utcnow(),
    }
    if job_ids is not None:
        values["job_ids"] = job_ids
    with session_scope(engine) as session:
        session.execute(sa.update(ScheduleFire).where(col(ScheduleFire.id) == fire_id).values(**values))
