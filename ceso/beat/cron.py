"""Cron expressions (five fields, UTC) as the set of minutes they match.

The fields are parsed by Celery's ``crontab`` (so ``*/15``, ranges, lists and day names mean what
they always meant in ceso's schedules); this module only asks which minutes match, so the
scheduler can find the latest due slot and the next one. As with Celery, a minute matches when
*every* field matches (day of month and day of week both restrict).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ceso.errors import ConfigError

__all__ = ["Cron"]

_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
#: Longest look-ahead or look-back (the Gregorian calendar repeats its weekdays every 28 years
#: within a century): a cron that matches nothing within it never matches.
_HORIZON = timedelta(days=366 * 28)


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression."""

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron

    @classmethod
    def parse(cls, expr: str, *, where: str) -> Cron:
        """Parse ``expr``; ConfigError naming ``where`` if it is not five valid fields."""
        parts = expr.split()
        if len(parts) != 5:
            raise ConfigError(f"{where}: cron {expr!r} must have 5 fields (minute hour day month weekday)")
        from celery.schedules import crontab

        try:
            parsed = crontab(**dict(zip(_FIELDS, parts, strict=True)))
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{where}: invalid cron {expr!r}: {exc}") from exc
        cron = cls(
            expr,
            frozenset(parsed.minute),
            frozenset(parsed.hour),
            frozenset(parsed.day_of_month),
            frozenset(parsed.month_of_year),
            frozenset(parsed.day_of_week),
        )
        now = datetime.now(UTC)
        if cron._search(now, forward=True) is None:
            raise ConfigError(f"{where}: cron {expr!r} never matches (e.g. 30 February)")
        return cron

    def fields(self) -> dict[str, str]:
        """The five fields as Celery crontab keywords."""
        return dict(zip(_FIELDS, self.expr.split(), strict=True))

    def _day_matches(self, moment: datetime) -> bool:
        return (
            moment.month in self.months
            and moment.day in self.days
            and (moment.weekday() + 1) % 7 in self.weekdays
        )

    def matches(self, moment: datetime) -> bool:
        """True if the minute of ``moment`` (UTC) is one of this cron's."""
        return self._day_matches(moment) and moment.hour in self.hours and moment.minute in self.minutes

    def latest(self, moment: datetime) -> datetime | None:
        """The latest matching minute at or before ``moment``."""
        return self._search(moment, forward=False)

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment``."""
        found = self._search(moment.replace(second=0, microsecond=0) + timedelta(minutes=1), forward=True)
        assert found is not None  # parse() refused crons that never match
        return found

    def _search(self, moment: datetime, *, forward: bool) -> datetime | None:
        """The first matching minute from ``moment`` (included) in one direction, skipping whole
        days and hours that cannot match; None beyond the horizon."""
        minute = moment.astimezone(UTC).replace(second=0, microsecond=0)
        limit = minute + (_HORIZON if forward else -_HORIZON)
        step = timedelta(minutes=1 if forward else -1)
        while (minute <= limit) if forward else (minute >= limit):
            if not self._day_matches(minute):
                day = minute.replace(hour=0, minute=0)
                minute = day + timedelta(days=1) if forward else day - timedelta(minutes=1)
                continue
            if minute.hour not in self.hours:
                hour = minute.replace(minute=0)
                minute = hour + timedelta(hours=1) if forward else hour - timedelta(minutes=1)
                continue
            if minute.minute in self.minutes:
                return minute
            minute += step
        return None
