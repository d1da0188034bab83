"""The three sandbox modes and their order: ``read-only`` < ``standard`` < ``admin``.

A mode allows every operation whose least mode is at or below it. Dependency
free: the settings, the CLI and cesod all import this.
"""

from __future__ import annotations

from ceso.errors import InvalidInputError

__all__ = ["ADMIN", "MODES", "READ_ONLY", "STANDARD", "allows", "higher", "parse_mode", "rank"]

READ_ONLY = "read-only"
STANDARD = "standard"
ADMIN = "admin"
MODES: tuple[str, ...] = (READ_ONLY, STANDARD, ADMIN)


def rank(mode: str) -> int:
    """0 for read-only, 1 for standard, 2 for admin; ValueError for anything else."""
    return MODES.index(mode)


def parse_mode(value: str) -> str:
    """``value`` as a mode name; InvalidInputError naming the valid ones."""
    if value not in MODES:
        raise InvalidInputError(f"unknown mode {value!r} (one of {', '.join(MODES)})")
    return value


def allows(mode: str, needed: str) -> bool:
    """True if an actor in ``mode`` may run an operation whose least mode is ``needed``."""
    return rank(mode) >= rank(needed)


def higher(a: str, b: str) -> str:
    """The more powerful of two modes."""
    return a if rank(a) >= rank(b) else b
