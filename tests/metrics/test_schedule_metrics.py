"""The scheduler's gauges, computed from real SQL at scrape time: a schedule that did not fire when
due, and by when each VM a schedule covers needs a good backup (a VM never backed up included)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from tests.conftest import _clear_caches


def _samples(collector: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_overdue_schedules_and_backup_deadlines(
    ceso_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ceso.db.backup_models import BackupSet
    from ceso.db.models import Job
    from ceso.db.schedule_models import ScheduleFire
    from ceso.metrics.collector import StateCollector
    from ceso.runtime import get_runtime

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    slot = now - timedelta(minutes=10)  # an hourly schedule whose latest slot passed 10 minutes ago
    cron = f"{slot.minute} * * * *"
    schedules = [
        {"vm": "fired-late", "host": "esxi-a", "cron": cron},
        {"vm": "never-fired", "host": "esxi-a", "cron": cron},
        {"tag": "web", "host": "esxi-a", "cron": cron},
    ]
    monkeypatch.setenv("CESO_BACKUPS__SCHEDULES", json.dumps(schedules))
    monkeypatch.setenv("CESO_BACKUPS__TAGS", json.dumps({"web": ["web-*"]}))
    _clear_caches()
    runtime = get_runtime()
    window = timedelta(hours=1, seconds=7200)  # the hourly period plus the 2 h slack
    earlier = slot - timedelta(hours=1)
    backed_up = now - timedelta(minutes=30)
    with Session(runtime.engine) as session:
        # fired-late fired an hour ago but not at its latest slot; the tag schedule fired now.
        session.add(
            ScheduleFire(schedule="backup esxi-a/fired-late #0", slot=earlier, leader="beat@a", state="done")
        )
        session.add(
            ScheduleFire(schedule="backup esxi-a/tag:web #2", slot=slot, leader="beat@a", state="done")
        )
        # The tag schedule made a job for web-1 (and one for db-1 that the tag does not match).
        for vm in ("web-1", "db-1"):
            session.add(
                Job(kind="backup.create", host="esxi-a", target=vm, idempotency_key=f"schedule:esxi-a:{vm}:x")
            )
        session.add(
            BackupSet(
                id="b-1", vm="fired-late", host="esxi-a", target="nas", path="p", status="completed", kind="hot",
                compression="zstd", completed_at=backed_up,
            )
        )  # fmt: skip
        session.commit()
    try:
        collector = StateCollector(runtime, ["esxi-a"])
        samples = _samples(collector)
        overdue = {
            dict(k)["schedule"]: v for (name, k), v in samples.items() if name == "ceso_schedule_overdue"
        }
        # This process has just seen never-fired: it is not overdue yet (it may be brand new).
        assert overdue == {
            "backup esxi-a/fired-late #0": 1,
            "backup esxi-a/never-fired #1": 0,
            "backup esxi-a/tag:web #2": 0,
        }
        deadlines = {
            dict(k)["vm"]: datetime.fromtimestamp(v, UTC)
            for (name, k), v in samples.items()
            if name == "ceso_backup_deadline_timestamp_seconds"
        }
        assert deadlines["fired-late"] == backed_up + window
        assert deadlines["web-1"] == slot + window  # never backed up: from its schedule's first firing
        assert abs((deadlines["never-fired"] - (datetime.now(UTC) + window)).total_seconds()) < 120
        assert "db-1" not in deadlines
        # Once the exporter has known never-fired for longer than a slot and the grace, it is overdue.
        collector._schedules_seen["backup esxi-a/never-fired #1"] = now - timedelta(hours=2)
        again = _samples(collector)
        assert again[("ceso_schedule_overdue", (("schedule", "backup esxi-a/never-fired #1"),))] == 1
    finally:
        with Session(runtime.engine) as session:
            for job in session.exec(Job.__table__.select()).all():  # type: ignore[attr-defined]
                session.delete(session.get(Job, job.id))
            session.commit()
