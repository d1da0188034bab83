"""The ``.vmx`` file format: parse, escape, render; BIOS UUIDs in vmx form.

A .vmx is UTF-8 text (``.encoding = "UTF-8"``), one ``key = "value"`` per
line; ``#`` starts a comment line. Keys are case-insensitive
(``memSize``/``memsize``); the last occurrence of a key wins. Inside a value,
VMware escapes bytes with ``|`` and two hex digits: ``"`` is ``|22``, ``|`` is
``|7C`` and control characters (a newline is ``|0A``) are escaped the same
way, which keeps every entry on one line. ``uuid.bios`` holds the 16 UUID bytes as
``"56 4d 09 6b b0 ff 56 dd-bd 74 a4 03 97 2b f3 37"``.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable, Iterator

from ceso.errors import InvalidInputError

__all__ = ["Vmx", "bios_uuid", "escape_value", "parse_vmx", "render_vmx", "unescape_value", "uuid_from_bios"]

_KEY = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_LINE = re.compile(r'^\s*(?P<key>[^=\s]+)\s*=\s*(?P<value>"(?P<quoted>.*)"|(?P<bare>.*?))\s*$')
_HEX = re.compile(r"\|([0-9A-Fa-f]{2})")


def escape_value(value: str) -> str:
    """Escape ``|``, ``"`` and control characters as ``|XX`` (see module docstring)."""
    out = []
    for ch in value:
        if ch in '|"' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"|{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_value(value: str) -> str:
    """Undo :func:`escape_value`: every ``|XX`` becomes the byte XX."""
    return _HEX.sub(lambda m: chr(int(m.group(1), 16)), value)


class Vmx:
    """The entries of a .vmx in file order, with case-insensitive lookup."""

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        self._entries: dict[str, tuple[str, str]] = {}
        for key, value in entries:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        if not _KEY.match(key):
            raise InvalidInputError(f"{key!r} is not a valid .vmx key")
        self._entries.pop(key.lower(), None)  # re-setting a key moves it to the end, as a later line would
        self._entries[key.lower()] = (key, value)

    def __getitem__(self, key: str) -> str:
        return self._entries[key.lower()][1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, default: str | None = None) -> str | None:
        entry = self._entries.get(key.lower())
        return entry[1] if entry is not None else default

    def flag(self, key: str) -> bool:
        """A boolean entry: ``TRUE``/``true``/``1`` are true, anything else (or absence) false."""
        return (self.get(key) or "").strip().lower() in ("true", "1", "yes")

    def items(self) -> list[tuple[str, str]]:
        return list(self._entries.values())

    def with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """Entries whose key starts with ``prefix`` (case-insensitive)."""
        return [(k, v) for k, v in self._entries.values() if k.lower().startswith(prefix.lower())]


def parse_vmx(text: str) -> Vmx:
    """Parse .vmx text; lines that are neither entries, comments nor blank raise InvalidInputError."""
    vmx = Vmx()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None or not _KEY.match(match.group("key")):
            raise InvalidInputError(f".vmx line {number} is not 'key = \"value\"': {stripped[:80]!r}")
        raw = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
        vmx[match.group("key")] = unescape_value(raw)
    return vmx


def render_vmx(vmx: Vmx) -> bytes:
    """The .vmx file for ``vmx``: ``.encoding`` first, one escaped entry per line, UTF-8."""
    lines = ['.encoding = "UTF-8"']
    for key, value in vmx.items():
        if key.lower() == ".encoding":
            continue
        lines.append(f'{key} = "{escape_value(value)}"')
    return ("\n".join(lines) + "\n").encode("utf-8")


def bios_uuid(value: str) -> str:
    """``564d096b-b0ff-56dd-bd74-a403972bf337`` → ``56 4d 09 6b b0 ff 56 dd-bd 74 a4 03 97 2b f3 37``."""
    try:
        raw = uuidlib.UUID(value).hex
    except ValueError as exc:
        raise InvalidInputError(f"{value!r} is not a UUID") from exc
    pairs = [raw[i : i + 2] for i in range(0, 32, 2)]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])


def uuid_from_bios(value: str) -> str:
    """The inverse of :func:`bios_uuid` (the API's ``config.uuid`` form)."""
    raw = value.replace(" ", "").replace("-", "")
    try:
        return str(uuidlib.UUID(hex=raw))
    except ValueError as exc:
        raise InvalidInputError(f"{value!r} is not a vmx uuid.bios value") from exc
