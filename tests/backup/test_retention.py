"""GFS retention on a synthetic calendar, policies per VM and per tag, and the safety rules
around the newest verified backup."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ceso.backup.config import BackupSettings, RetentionPolicy
from ceso.backup.policy import resolve_policy
from ceso.backup.retention import Candidate, keep_by_policy, select_expired
from ceso.backup.tags import check_pattern
from ceso.errors import ConfigError
from ceso.settings import load_settings

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


# -- policies per tag -------------------------------------------------------------------------------
def tagged_settings() -> BackupSettings:
    return BackupSettings.model_validate(
        {
            "tags": {"prod": ["web-*", "db-1"], "db": ["db-[0-9]"], "lab": ["lab-?"]},
            "retention": {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
            "retention_per_tag": {
                "prod": {"keep_last": 2, "keep_daily": 0, "keep_weekly": 2, "keep_monthly": 2},
                "db": {"keep_last": 5, "keep_daily": 3, "keep_weekly": 0, "keep_monthly": 0},
            },
            "retention_per_vm": {
                "web-vip": {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
            },
        }
    )


def classes(kept: dict[str, str]) -> dict[str, list[str]]:
    by_class: dict[str, list[str]] = {}
    for ident, cls in sorted(kept.items()):
        by_class.setdefault(cls, []).append(ident)
    return by_class


def test_gfs_by_tag_on_a_synthetic_calendar() -> None:
    resolved = resolve_policy(tagged_settings(), "web-01")
    assert resolved.source == "tag:prod"
    items = daily(45)  # 2026-01-01 (Thu) .. 2026-02-14 (Sat); Monday 9 Feb has d039 and d039-pm
    assert classes(keep_by_policy(items, resolved.policy)) == {
        "last": ["d043", "d044"],
        "weekly": ["d038"],  # Sun 8 Feb, the newest of the week before (this week's is d044)
        "monthly": ["d030"],  # Sat 31 Jan, the newest of January (February's is d044)
    }
    # The newest verified backup anchors the prune: it is kept, and nothing newer goes.
    items = [Candidate(c.id, c.created_at, "verified" if c.id == "d040" else c.status) for c in items]
    expired, kept = select_expired(items, resolved.policy)
    assert kept["d040"] == "last-verified"
    survivors = {c.id for c in items} - {c.id for c in expired}
    assert survivors == {"d030", "d038", "d040", "d041", "d042", "d043", "d044"}


def test_precedence_vm_then_tags_then_default() -> None:
    settings = tagged_settings()
    # A VM policy wins over the tag policy of the same VM (web-vip is also tagged prod).
    assert resolve_policy(settings, "web-vip").source == "vm"
    assert resolve_policy(settings, "web-vip").policy.keep_last == 1
    # Several tagged policies: the largest of each rule across them.
    both = resolve_policy(settings, "db-1")
    assert both.source == "tag:db+prod"
    assert both.policy.model_dump() == {"keep_last": 5, "keep_daily": 3, "keep_weekly": 2, "keep_monthly": 2}
    # A tag without a policy (lab) and no tag at all: the default.
    assert resolve_policy(settings, "lab-1").source == "default"
    assert resolve_policy(settings, "misc").source == "default"
    # Globs match the whole name, case-sensitively.
    assert resolve_policy(settings, "db-10").source == "default"
    assert resolve_policy(settings, "Web-01").source == "default"


def test_merged_tag_policy_keeps_what_either_tag_keeps() -> None:
    settings = tagged_settings()
    items = daily(45)
    merged = keep_by_policy(items, resolve_policy(settings, "db-1").policy)
    for tag in ("prod", "db"):
        assert set(keep_by_policy(items, settings.retention_per_tag[tag])) <= set(merged)


def test_last_verified_backup_survives_a_tag_policy_that_keeps_nothing_old() -> None:
    settings = tagged_settings()
    items = [Candidate(c.id, c.created_at, "verified" if c.id == "d005" else c.status) for c in daily(45)]
    expired, kept = select_expired(items, resolve_policy(settings, "web-01").policy)
    assert kept["d005"] == "last-verified" and "d005" not in {c.id for c in expired}
    assert {c.id for c in expired} == {c.id for c in items if c.created_at < START + timedelta(days=5)}


def _config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backups: dict[str, object]) -> str:
    for key in [k for k in os.environ if k.startswith("CESO_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "ceso.yaml"
    path.write_text(yaml.safe_dump({"backups": backups}))
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    return str(exc.value)


@pytest.mark.parametrize(
    ("backups", "key", "reason"),
    [
        ({"retention_per_tag": {"prd": {"keep_last": 1}}}, "backups.retention_per_tag", "unknown tag 'prd'"),
        ({"tags": {"prod": ["web-["]}}, "backups.tags.prod.0", "'[' at position 4 is never closed"),
        ({"tags": {"prod": ["web/*"]}}, "backups.tags.prod.0", "no VM name can hold"),
        ({"tags": {"prod": [""]}}, "backups.tags.prod.0", "empty VM name pattern"),
        ({"tags": {"prod": []}}, "backups.tags.prod", "at least 1 item"),
        ({"tags": {"my tag": ["x"]}}, "backups.tags.my tag.[key]", "invalid tag name 'my tag'"),
        (
            {"tags": {"prod": ["web-*"]}, "retention_per_tag": {"prod": {"keep_daily": -1}}},
            "backups.retention_per_tag.prod.keep_daily",
            "greater than or equal to 0",
        ),
        (
            {"retention_per_vm": {"web-01": {"keep_monthly": -2}}},
            "backups.retention_per_vm.web-01.keep_monthly",
            "greater than or equal to 0",
        ),
        (
            {"schedules": [{"tag": "prod", "host": "esxi-a", "cron": "0 2 * * *"}]},
            "backups.schedules",
            "item 0: unknown tag 'prod'",
        ),
        (
            {"schedules": [{"vm": "a", "tag": "prod", "host": "esxi-a", "cron": "0 2 * * *"}]},
            "backups.schedules.0",
            "exactly one of `vm` and `tag`",
        ),
    ],
)
def test_bad_tag_and_policy_config_is_one_clear_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backups: dict[str, object], key: str, reason: str
) -> None:
    message = _config_error(tmp_path, monkeypatch, backups)
    assert f"invalid value for {key!r}" in message and reason in message, message
    assert str(tmp_path / "ceso.yaml") in message


@pytest.mark.parametrize("pattern", ["web-*", "db-1", "db-[0-9]", "x[!a-c]?", "[]]x", "*"])
def test_valid_globs(pattern: str) -> None:
    assert check_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["web-[", "web-]", " web", "a:b", "[!]", "a\tb"])
def test_bad_globs(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_pattern(pattern)


def test_kept_incrementals_keep_their_whole_chain() -> None:
    # A full every 4 days, incrementals between; every point verified. keep_last=2 keeps the
    # two newest incrementals, so their parents up to the full stay as well.
    items = []
    for d in range(10):
        parent = None if d % 4 == 0 else f"p{d - 1}"
        items.append(Candidate(f"p{d}", START + timedelta(days=d), "verified", parent))
    expired, kept = select_expired(
        items, RetentionPolicy(keep_last=2, keep_daily=0, keep_weekly=0, keep_monthly=0)
    )
    assert kept == {"p9": "last", "p8": "last"}
    assert {c.id for c in expired} == {
        f"p{d}" for d in range(8)
    }  # p8 is the newest full: nothing before it is needed
    expired, kept = select_expired(
        items, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    )
    assert kept["p9"] == "last" and kept["p8"] == "chain"
    items.append(Candidate("p10", START + timedelta(days=10), "verified", "p9"))
    items.append(Candidate("p11", START + timedelta(days=11), "verified", "p10"))
    expired, kept = select_expired(
        items, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    )
    assert {k for k, v in kept.items() if v == "chain"} == {"p8", "p9", "p10"}
    assert {c.id for c in expired} == {f"p{d}" for d in range(8)}
