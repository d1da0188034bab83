"""Durations typed by people: ``90s``, ``30m``, ``2h``, ``1h30m``."""

from __future__ import annotations

import re

from ceso.errors import InvalidInputError

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, field: str = "--for") -> int:
    """Seconds in ``text``; InvalidInputError for anything but digits+unit groups (a unit is required)."""
    value = text.strip().lower().replace(" ", "")
    if not value or _PART.sub("", value):
        raise InvalidInputError(f"{field} {text!r}: give a duration with a unit, e.g. 90s, 30m, 2h or 1h30m")
    seconds = sum(int(n) * _UNIT[u] for n, u in _PART.findall(value))
    if seconds <= 0:
        raise InvalidInputError(f"{field} {text!r}: the duration must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` → ``1h30m``; ``45`` → ``45s``."""
    s = int(seconds)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
