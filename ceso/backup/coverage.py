"""Which VMs the schedules promise to back up, and by when the next good backup is due.

A VM is covered by a schedule of its name, or by a schedule of a tag once that schedule has made
a job for it (the tag's VMs are listed on the host when it fires, which a metrics scrape must not
do). Its window is the schedule's longest gap between two slots plus :data:`SLACK_S`; its
deadline is its newest completed or verified backup plus the window, or, for a VM never backed
up, the schedule's first firing (else the moment this process first saw the schedule) plus the
window. A VM covered by several schedules gets the earliest deadline.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ceso.db.backup_models import BackupSet
from ceso.db.models import Job
from ceso.db.schedule_models import ScheduleFire

if TYPE_CHECKING:
    from ceso.backup.config import BackupSettings
    from ceso.beat.cron import Cron
    from ceso.runtime import Runtime

__all__ = ["SLACK_S", "backup_deadlines", "period"]

#: Time a backup may take and still count as on time (a daily schedule: 26 hours).
SLACK_S = 2 * 3600


def period(cron: Cron, now: datetime) -> timedelta:
    """The longest gap between consecutive slots over the next eight (a weekday schedule: 3 days)."""
    slots = [cron.next_after(now)]
    for _ in range(8):
        slots.append(cron.next_after(slots[-1]))
    return max(b - a for a, b in itertools.pairwise(slots))


def backup_deadlines(
    runtime: Runtime, settings: BackupSettings, *, now: datetime, known_since: dict[str, datetime]
) -> dict[tuple[str, str], datetime]:
    """(vm, host) → when a good backup is overdue, for every VM a schedule covers."""
    from ceso.backup.schedule import schedule_entries, schedule_key
    from ceso.backup.tags import vms_with_tag

    entries = {e.key: e for e in schedule_entries(settings)}
    deadlines: dict[tuple[str, str], datetime] = {}
    with Session(runtime.engine) as session:
        last_good = _last_good(session)
        first_fire = _first_fires(session)
        for i, item in enumerate(settings.schedules):
            if item.kind == "drill":  # backs nothing up (CesoNoSuccessfulDrill watches drills)
                continue
            key = schedule_key(item, i)
            window = period(entries[key].cron, now) + timedelta(seconds=SLACK_S)
            if item.vm is not None:
                vms = [item.vm]
            else:
                assert item.tag is not None
                vms = vms_with_tag(_scheduled_vms(session, item.host), settings.tags.get(item.tag, []))
            start = first_fire.get(key) or known_since.get(key, now)
            for vm in vms:
                deadline = last_good.get((vm, item.host), start) + window
                current = deadlines.get((vm, item.host))
                deadlines[(vm, item.host)] = deadline if current is None else min(current, deadline)
    return deadlines


def _last_good(session: Session) -> dict[tuple[str, str], datetime]:
    finished = sa.func.max(BackupSet.completed_at)
    rows = session.exec(
        select(BackupSet.vm, BackupSet.host, finished)
        .where(col(BackupSet.status).in_(["completed", "verified"]), col(BackupSet.completed_at).is_not(None))
        .group_by(col(BackupSet.vm), col(BackupSet.host))
    )
    return {(str(vm), str(host)): when for vm, host, when in rows if when is not None}


def _first_fires(session: Session) -> dict[str, datetime]:
    rows = session.exec(
        select(ScheduleFire.schedule, sa.func.min(ScheduleFire.slot)).group_by(col(ScheduleFire.schedule))
    )
    return {str(key): slot for key, slot in rows if slot is not None}


def _scheduled_vms(session: Session, host: str) -> list[str]:
    """VMs of ``host`` that a schedule has made a backup job for (their keys name the schedule)."""
    rows = session.exec(
        select(Job.target)
        .where(
            Job.kind == "backup.create",
            Job.host == host,
            col(Job.idempotency_key).startswith(f"schedule:{host}:"),
        )
        .distinct()
    )
    return sorted(str(vm) for vm in rows if vm)
