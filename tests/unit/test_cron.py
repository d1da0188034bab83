"""Cron expressions as the scheduler reads them: which minutes match, the latest and the next."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ceso.beat.cron import Cron
from ceso.errors import ConfigError


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_latest_and_next_slots() -> None:
    nightly = Cron.parse("0 2 * * *", where="t")
    assert nightly.latest(at(2026, 12, 7, 9, 30)) == at(2026, 12, 7, 2, 0)
    assert nightly.latest(at(2026, 12, 7, 2, 0, 59)) == at(2026, 12, 7, 2, 0)
    assert nightly.latest(at(2026, 12, 7, 1, 59)) == at(2026, 12, 6, 2, 0)
    assert nightly.next_after(at(2026, 12, 7, 2, 0)) == at(2026, 12, 8, 2, 0)
    every = Cron.parse("* * * * *", where="t")
    assert every.latest(at(2026, 12, 7, 9, 59, 30)) == at(2026, 12, 7, 9, 59)
    assert every.next_after(at(2026, 12, 7, 9, 59, 30)) == at(2026, 12, 7, 10, 0)


def test_weekdays_count_from_sunday_and_every_field_must_match() -> None:
    weekdays = Cron.parse("*/15 2-4 * * mon-fri", where="t")
    saturday = at(2026, 12, 5, 3, 7)
    assert weekdays.latest(saturday) == at(2026, 12, 4, 4, 45)  # Friday's last slot
    assert weekdays.next_after(saturday) == at(2026, 12, 7, 2, 0)  # Monday
    sunday = Cron.parse("0 0 * * 0", where="t")
    assert sunday.matches(at(2026, 12, 6, 0, 0)) and not sunday.matches(at(2026, 12, 7, 0, 0))
    # Day of month and day of week both restrict (as Celery reads them): the 13th only on a Friday.
    friday13 = Cron.parse("0 12 13 * 5", where="t")
    assert friday13.next_after(at(2026, 1, 1)) == at(2026, 2, 13, 12, 0)


def test_rare_crons_are_found_and_impossible_ones_refused() -> None:
    assert Cron.parse("0 0 29 2 1", where="t").next_after(at(2026, 12, 7)) == at(2044, 2, 29, 0, 0)
    for bad, says in (
        ("0 2 * *", "must have 5 fields"),
        ("61 * * * *", "invalid cron"),
        ("0 0 31 4 *", "invalid cron"),  # Celery: 31 April never occurs
    ):
        with pytest.raises(ConfigError, match=says):
            Cron.parse(bad, where="backups.prune_cron")
