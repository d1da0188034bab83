"""Sizes as users write them (``4G``, ``512M``, ``40GiB``, ``2048``) → bytes or MiB."""

from __future__ import annotations

import re

from ceso.errors import InvalidInputError

__all__ = ["format_bytes", "parse_memory_mb", "parse_size"]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str, *, field: str = "size", default_unit: str = "G") -> int:
    """Bytes of ``text``; units are binary (G = GiB). A bare number uses ``default_unit``."""
    match = _SIZE.match(str(text))
    if not match:
        raise InvalidInputError(f"{field} {text!r} is not a size such as 40G, 512M or 1.5T")
    number, unit = match.groups()
    unit = unit.upper() or default_unit
    value = int(float(number) * _UNITS[unit])
    if value <= 0:
        raise InvalidInputError(f"{field} {text!r} must be larger than zero")
    return value


def parse_memory_mb(text: str) -> int:
    """Memory in MiB (a bare number means MiB); must be a multiple of 4 MiB as ESXi requires."""
    mb = parse_size(text, field="memory", default_unit="M") // 2**20
    if mb < 4 or mb % 4:
        raise InvalidInputError(f"memory {text!r} must be at least 4 MiB and a multiple of 4 MiB")
    return mb


def format_bytes(value: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if value >= _UNITS[unit] and value % _UNITS[unit] == 0:
            return f"{value // _UNITS[unit]}{unit}"
    return f"{value}B"
