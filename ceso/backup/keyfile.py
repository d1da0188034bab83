"""The text form of an exported backup encryption key (``ceso backup key export`` / ``import``).

A key file is UTF-8 text; ``#`` lines are comments and blank lines are ignored::

    # ceso backup encryption key ...
    ceso-backup-key: 1
    key-id: 0123456789abcdef
    key: <the 32-byte key in standard base64, 44 characters>

* ``ceso-backup-key`` is the format version (``1``);
* ``key-id`` is the key's public fingerprint (:func:`ceso.backup.crypto.key_id`), the
  one every encrypted backup's manifest records under ``encryption.key_id``; it
  doubles as a checksum, so a mistyped or truncated key is refused on import;
* ``key`` is the secret.

:func:`parse_key_text` also accepts a single line holding only the base64 key,
the form the secret store keeps it in. Errors never quote the input: it may
hold the key.
"""

from __future__ import annotations

import base64
import binascii

from ceso.backup.crypto import key_id
from ceso.errors import InvalidInputError

__all__ = ["FORMAT_VERSION", "MAX_KEY_TEXT", "format_key_text", "parse_key_text"]

FORMAT_VERSION = "1"
#: Longest key file read; a real one is a few hundred bytes.
MAX_KEY_TEXT = 64 << 10
_KEY_BYTES = 32

_HEADER = """\
# ceso backup encryption key. Anyone holding this file can decrypt the encrypted backups
# made with it, and without it they cannot be restored. Keep it offline (a password
# manager, a safe), never beside the backups. Restore it with:
#   ceso backup key import --input FILE
"""


def _invalid(reason: str) -> InvalidInputError:
    return InvalidInputError(f"not a valid ceso backup key: {reason}", code="backup_key_invalid")


def format_key_text(key: bytes) -> str:
    """The key file of ``key`` (32 bytes)."""
    if len(key) != _KEY_BYTES:
        raise InvalidInputError("a backup encryption key must be 32 bytes", code="backup_key_invalid")
    return (
        f"{_HEADER}ceso-backup-key: {FORMAT_VERSION}\n"
        f"key-id: {key_id(key)}\n"
        f"key: {base64.b64encode(key).decode()}\n"
    )


def _decode(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("the key is not base64") from None
    if len(key) != _KEY_BYTES:
        raise _invalid(f"the key is {len(key)} bytes, not {_KEY_BYTES}")
    return key


def parse_key_text(text: str) -> bytes:
    """The key held by ``text`` (a key file, or one line of base64); InvalidInputError otherwise.

    The error (code ``backup_key_invalid``) says what is wrong without quoting the text.
    """
    if len(text) > MAX_KEY_TEXT:
        raise _invalid(f"more than {MAX_KEY_TEXT} characters")
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not lines:
        raise _invalid("the input is empty")
    if len(lines) == 1 and ":" not in lines[0][1]:
        return _decode(lines[0][1])
    fields: dict[str, str] = {}
    for n, line in lines:
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or name not in ("ceso-backup-key", "key-id", "key"):
            raise _invalid(f"line {n} is not one of 'ceso-backup-key:', 'key-id:', 'key:'")
        if name in fields:
            raise _invalid(f"line {n} repeats {name!r}")
        fields[name] = value.strip()
    missing = [k for k in ("ceso-backup-key", "key-id", "key") if k not in fields]
    if missing:
        raise _invalid(f"missing {', '.join(repr(k + ':') for k in missing)}")
    if fields["ceso-backup-key"] != FORMAT_VERSION:
        raise _invalid(f"unknown format version (this ceso reads version {FORMAT_VERSION})")
    key = _decode(fields["key"])
    if fields["key-id"].lower() != key_id(key):
        raise _invalid("'key-id' does not match the key (the file is damaged or was edited)")
    return key
