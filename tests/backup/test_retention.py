"""GFS retention on a synthetic calendar, and the safety rules around the newest verified backup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ceso.backup.config import RetentionPolicy
from ceso.backup.retention import Candidate, keep_by_policy, select_expired

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # a Thursday


def daily(days: int, status: str = "completed") -> list[Candidate]:
    """One backup a day at 02:00 for ``days`` days, plus an extra one at 14:00 every Monday."""
    items = []
    for d in range(days):
        t = START + timedelta(days=d)
        items.append(Candidate(f"d{d:03}", t, status))
        if t.weekday() == 0:
            items.append(Candidate(f"d{d:03}-pm", t + timedelta(hours=12), status))
    return items


def test_gfs_keeps_last_daily_weekly_monthly() -> None:
    items = daily(120)  # 2026-01-01 .. 2026-04-30
    kept = keep_by_policy(items, RetentionPolicy(keep_last=2, keep_daily=5, keep_weekly=3, keep_monthly=4))
    newest = sorted(items, key=lambda c: c.created_at)[-1]
    assert newest.id == "d119"
    by_class: dict[str, list[str]] = {}
    for ident, cls in kept.items():
        by_class.setdefault(cls, []).append(ident)
    assert sorted(by_class["last"]) == ["d118", "d119"]
    # daily: the newest per day of the 5 newest days; the 2 newest days are already "last"
    assert sorted(by_class["daily"]) == ["d115", "d116-pm", "d117"]  # d116 is a Monday
    # weekly: newest per ISO week; the current week (Mon 27 Apr..) is covered by d119,
    # the weeks before end on Sundays 26 Apr (d115, daily) and 19 Apr (d108)
    assert sorted(by_class["weekly"]) == ["d108"]
    # monthly: newest of April (d119), March (d089), February (d058), January (d030)
    assert sorted(by_class["monthly"]) == ["d030", "d058", "d089"]
    assert len(kept) == 2 + 3 + 1 + 3


def test_monday_afternoon_backup_is_the_newest_of_its_day() -> None:
    items = daily(10)  # Monday is 2026-01-05 (d004)
    kept = keep_by_policy(items, RetentionPolicy(keep_last=0, keep_daily=10, keep_weekly=0, keep_monthly=0))
    assert "d004-pm" in kept and "d004" not in kept


def test_nothing_expires_without_a_verified_backup() -> None:
    items = daily(30)
    expired, _ = select_expired(
        items, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    )
    assert expired == []


def test_only_backups_older_than_the_newest_verified_expire_and_it_is_kept() -> None:
    items = daily(30)
    # Backups d020 and d010 are verified; newer ones are merely completed (perhaps bad).
    items = [
        Candidate(c.id, c.created_at, "verified" if c.id in ("d010", "d020") else c.status) for c in items
    ]
    policy = RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    expired, kept = select_expired(items, policy)
    ids = {c.id for c in expired}
    assert kept["d029"] == "last" and kept["d020"] == "last-verified"
    assert "d020" not in ids and not any(c.created_at > START + timedelta(days=20) for c in expired)
    assert "d010" in ids and "d000" in ids
    assert ids == {c.id for c in items if c.created_at < START + timedelta(days=20)}


def test_failed_and_pending_backups_are_not_candidates() -> None:
    items = [*daily(3, "verified"), Candidate("bad", START - timedelta(days=5), "failed")]
    expired, _ = select_expired(
        items, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    )
    assert "bad" not in {c.id for c in expired}
