"""What the scheduler fires: a named cron entry and the Celery task it sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ceso.beat.cron import Cron

__all__ = ["ScheduleEntry"]


@dataclass(frozen=True)
class ScheduleEntry:
    """One schedule: ``key`` names it in SQL (``schedule_fires.schedule``) and in ``ceso schedule list``;
    at each minute its ``cron`` matches, the leading beat sends ``task`` to ``queue`` with ``args``
    and the keyword arguments ``slot`` (the minute, ISO 8601 UTC) and ``fire`` (the SQL row's id)."""

    key: str
    cron: Cron
    task: str
    queue: str
    args: tuple[Any, ...] = field(default=())
