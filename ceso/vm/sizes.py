"""Sizes and counts as users write them (``4G``, ``512M``, ``40GiB``, ``2048``), checked against
what ESXi accepts: whole MiB, memory a multiple of 4 MiB, and VMware's documented maximums.

The upper bounds are VMware's published configuration maximums for a virtual machine; a
host may allow less (its own memory, an older hardware version) and then refuses the job.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ceso.errors import InvalidInputError

if TYPE_CHECKING:
    from fractions import Fraction

__all__ = [
    "MAX_BARE_DISK_GB",
    "MAX_CPUS",
    "MAX_DISK_BYTES",
    "MAX_MEMORY_MB",
    "MAX_NICS",
    "MEMORY_STEP_MB",
    "MIN_BARE_MEMORY_MB",
    "check_cpus",
    "check_nic_number",
    "format_bytes",
    "parse_disk_bytes",
    "parse_memory_mb",
    "parse_size",
]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
MIB = 2**20
# At most 20 digits: more is no size, and int() of thousands of digits is refused or slow.
_SIZE = re.compile(r"^\s*(\d{1,20}(?:\.\d{1,20})?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)

#: "Maximum memory size for a virtual machine ... 24560 GB" (ESXi 7.0 Update 1 and later
#: compatibility; VMware vSphere Virtual Machine Administration, "Change the Memory
#: Configuration"), which also says "The memory size must be a multiple of 4 MB" and gives
#: 4 MB as the smallest size (BIOS firmware).
MAX_MEMORY_MB = 24560 * 1024
MEMORY_STEP_MB = 4
#: "Virtual disk size: 62 TB" (VMware Configuration Maximums, virtual machine storage, since
#: vSphere 5.5 on VMFS5/VMFS6).
MAX_DISK_BYTES = 62 * 2**40
#: "The maximum number of virtual CPUs that you can assign to a virtual machine is 768"
#: (VMware vSphere 8.0 Virtual Machine Administration, "Virtual CPU Limitations").
MAX_CPUS = 768
#: A bare memory number means MiB; below this it is far more likely GiB written without a unit
#: (``--memory 4``) than a VM that boots in 4 MiB, so it is refused with the spelling of both.
MIN_BARE_MEMORY_MB = 256
#: A bare disk number means GiB; from this on it is far more likely MiB written without a unit
#: (``--disk 40960``) than a 40 TiB disk, so it is refused with the spelling of both.
MAX_BARE_DISK_GB = 1024
#: "Virtual NICs per virtual machine: 10" (VMware Configuration Maximums, virtual machine networking).
MAX_NICS = 10


def _whole_hint(value: Fraction, step_mb: int) -> str:
    """How to write ``value`` bytes as a whole number: exactly, in the largest unit that allows it,
    when it is a whole multiple of ``step_mb`` MiB; else the nearest such size."""
    step = step_mb * MIB
    if (value / step).denominator == 1:
        for unit in ("T", "G", "M"):
            if (value / _UNITS[unit]).denominator == 1:
                return f"write {value // _UNITS[unit]}{unit}"
    nearest = max(step, round(value / step) * step)
    return f"write a whole number of MiB, such as {format_bytes(nearest)}"


def parse_size(
    text: str,
    *,
    field: str = "size",
    default_unit: str = "G",
    max_bytes: int | None = None,
    step_mb: int = 1,
) -> int:
    """Bytes of ``text``, a whole number of MiB; units are binary (G = GiB); a bare number uses
    ``default_unit``. InvalidInputError (naming ``field``) for anything else: fractions (with
    the whole-number spelling in the message), zero, sizes that are not whole MiB, and sizes
    over ``max_bytes``."""
    match = _SIZE.match(str(text))
    if not match:
        raise InvalidInputError(f"{field} {text!r} is not a size such as 40G, 512M or 2T")
    from fractions import Fraction  # exact: 1.1G is not 1126.4M by float rounding

    digits, unit = match.groups()
    unit = unit.upper() or default_unit
    number = Fraction(digits)
    if number.denominator != 1:
        hint = _whole_hint(number * _UNITS[unit], step_mb)
        raise InvalidInputError(f"{field} {text!r} is not a whole number: {hint}")
    value = number.numerator * _UNITS[unit]
    if value <= 0:
        raise InvalidInputError(f"{field} {text!r} must be larger than zero")
    if value % MIB:
        raise InvalidInputError(f"{field} {text!r} is not a whole number of MiB")
    if max_bytes is not None and value > max_bytes:
        raise InvalidInputError(f"{field} {text!r} is over ESXi's maximum of {format_bytes(max_bytes)}")
    return value


def _bare_number(text: str) -> int | None:
    """The whole number ``text`` is when it carries no unit at all; None otherwise."""
    stripped = str(text).strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 20:
        return None
    return int(stripped)


def parse_disk_bytes(text: str, *, field: str = "--disk") -> int:
    """Bytes of a virtual disk size: whole MiB, at most :data:`MAX_DISK_BYTES`. A bare number means
    GiB and must be below :data:`MAX_BARE_DISK_GB` (``--disk 40960`` is refused: write 40T or
    40960M); with a unit any size up to the maximum is taken."""
    bare = _bare_number(text)
    if bare is not None and bare >= MAX_BARE_DISK_GB:
        raise InvalidInputError(
            f"{field} {text!r} would mean {bare} GiB; write {format_bytes(bare * 2**30)} for that size, "
            f"or {bare}M for {bare} MiB"
        )
    return parse_size(text, field=field, default_unit="G", max_bytes=MAX_DISK_BYTES)


def parse_memory_mb(text: str, *, field: str = "--memory") -> int:
    """Memory in MiB: a multiple of 4 MiB, from 4 MiB to :data:`MAX_MEMORY_MB`. A bare number means
    MiB and must be at least :data:`MIN_BARE_MEMORY_MB` (``--memory 4`` is refused: write 4G, or
    4M for a VM that really has 4 MiB)."""
    bare = _bare_number(text)
    if bare is not None and bare < MIN_BARE_MEMORY_MB:
        raise InvalidInputError(
            f"{field} {text!r} would mean {bare} MiB; write {bare}G for {bare} GiB, or {bare}M if you mean MiB"
        )
    mb = (
        parse_size(text, field=field, default_unit="M", max_bytes=MAX_MEMORY_MB * MIB, step_mb=MEMORY_STEP_MB)
        // MIB
    )
    if mb % MEMORY_STEP_MB:
        raise InvalidInputError(
            f"{field} {text!r} must be a multiple of {MEMORY_STEP_MB} MiB, as ESXi requires"
        )
    return mb


def check_cpus(count: int, *, field: str = "--cpus") -> int:
    """``count`` if it is a number of virtual CPUs ESXi accepts (1 to :data:`MAX_CPUS`); InvalidInputError if not."""
    if not 1 <= count <= MAX_CPUS:
        raise InvalidInputError(f"{field} {count} is outside 1-{MAX_CPUS}")
    return count


def check_nic_number(number: int, *, field: str = "--nic") -> int:
    """``number`` if it can name one of a VM's NICs (1 to :data:`MAX_NICS`); InvalidInputError if not."""
    if not 1 <= number <= MAX_NICS:
        raise InvalidInputError(f"{field} {number}: NICs are numbered 1-{MAX_NICS}")
    return number


def format_bytes(value: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if value >= _UNITS[unit] and value % _UNITS[unit] == 0:
            return f"{value // _UNITS[unit]}{unit}"
    return f"{value}B"
