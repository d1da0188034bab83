"""SQL table of the scheduler: one row per schedule slot that ``ceso beat`` fired.

Imported at the end of :mod:`ceso.db.models`; migration ``0006`` creates it. The unique
(schedule, slot) pair is what makes a slot fire once even while two beats hand over.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from ceso.db.types import UTCDateTime, utcnow

__all__ = ["FIRE_STATES", "ScheduleFire"]

#: ``sending``: recorded, its message not yet known to be published (the leader re-sends it);
#: ``sent``: on the queue; ``done``/``failed``: the worker ran it and said how it went.
FIRE_STATES = ("sending", "sent", "done", "failed")


class ScheduleFire(SQLModel, table=True):
    """One firing of one schedule: which slot, by which beat, and what the worker made of it."""

    __tablename__ = "schedule_fires"
    __table_args__ = (
        sa.UniqueConstraint("schedule", "slot", name="uq_schedule_fires_schedule_slot"),
        sa.Index("ix_schedule_fires_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule: str = Field(sa_column=Column(sa.String(200), nullable=False))
    slot: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    fired_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    leader: str = Field(sa_column=Column(sa.String(200), nullable=False))
    state: str = Field(default="sending", sa_column=Column(sa.String(16), nullable=False))
    job_ids: list[str] = Field(default_factory=list, sa_column=Column(sa.JSON, nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(sa.String(500), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
