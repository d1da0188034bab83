"""The one redaction function: secrets out of audit records, logs, job params and errors.

Two nets, applied together by :func:`redact` (structures) and :func:`redact_text`:

* by **key** — a mapping value under a key that names a secret (``password``,
  ``token``, ``private_key``, ``guestinfo.userdata``, …) becomes ``[REDACTED]``;
* by **value** — PEM private-key blocks, ceso agent tokens, ``Bearer`` credentials,
  passwords in URLs, ``password: …``/``token=…`` pairs in free text, and every
  *known* secret this process has seen (host passwords read from the secret
  store or stdin, agent tokens) wherever they appear.

Sealed placeholders (``{"$sealed": ...}``, see :mod:`ceso.security.sealing`)
pass through untouched: they hold a reference, not the secret. Known secrets
shorter than :data:`MIN_KNOWN` characters are not matched by value (they would
shred ordinary text); the key and pattern nets still apply.

The known values are a bounded registry (:data:`MAX_KNOWN`, least recently
registered dropped first; registering a value again refreshes it, and the
secret store and token check do that on every use), so a long-lived process
neither grows nor slows with every secret it has ever seen. Only values a
caller proved are secrets are registered: a bearer string cesod rejected is
not (it could be any text, and would then be redacted everywhere).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

from ceso.security.tokens import TOKEN_RE

__all__ = [
    "REDACTED",
    "RedactingFormatter",
    "RememberingSecretStore",
    "is_secret_key",
    "known_secret_count",
    "redact",
    "redact_text",
    "register_secret",
]

REDACTED = "[REDACTED]"
MIN_KNOWN = 6
#: Known values kept at most. Far above what one process uses at once (a password per host, a
#: token per agent, the sealed values of the jobs in flight), small enough that matching every
#: known value against a log line stays cheap.
MAX_KNOWN = 512

_SECRET_KEY = re.compile(
    r"(?:^|[_.\-])(?:password|passwd|passphrase|pwd|secret|token|credentials?|authorization|cookie"
    r"|(?:api|private|secret|access)[_-]?key|userdata|vendordata)$",
    re.IGNORECASE,
)
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)")
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]+@", re.IGNORECASE)
_PAIR = re.compile(
    r"""(?P<key>["']?\b(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key"""
    r"""|secret[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?token|hashed_passwd|plain_text_passwd)\b"""
    r"""["']?\s*[:=]\s*)(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s"',;}\]]+)""",
    re.IGNORECASE,
)

_known: OrderedDict[str, None] = OrderedDict()  # oldest registration first
# The values longest first (no partial leftovers), rebuilt on each change and read without the
# lock. Plain substring replacement, not a compiled alternation: every new set of values would
# be a new pattern, and the ``re`` module keeps hundreds of compiled patterns in its cache.
_known_longest_first: list[tuple[str, ...]] = [()]  # one snapshot, swapped whole
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that it is redacted wherever it appears later in this process.

    Values shorter than :data:`MIN_KNOWN` are ignored. Beyond :data:`MAX_KNOWN`
    values the least recently registered one is forgotten.
    """
    if not value or len(value) < MIN_KNOWN:
        return
    with _lock:
        if value in _known:
            _known.move_to_end(value)
            return
        _known[value] = None
        while len(_known) > MAX_KNOWN:
            _known.popitem(last=False)
        _known_longest_first[0] = tuple(sorted(_known, key=len, reverse=True))


def known_secret_count() -> int:
    """How many values are registered (bounded by :data:`MAX_KNOWN`)."""
    return len(_known)


def is_secret_key(key: str) -> bool:
    """True if a mapping key names a secret (``password``, ``ssh_private_key``, ``guestinfo.userdata``)."""
    return bool(_SECRET_KEY.search(key))


def _pair(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def redact_text(text: str) -> str:
    """``text`` with every secret the patterns or the known values find replaced."""
    if not text:
        return text
    for known in _known_longest_first[0]:
        if known in text:
            text = text.replace(known, REDACTED)
    text = _PEM.sub("[REDACTED private key]", text)
    text = TOKEN_RE.sub(f"ceso_{REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _URL_CREDENTIALS.sub(rf"\1:{REDACTED}@", text)
    return _PAIR.sub(_pair, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, strings, numbers) with secrets removed."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        if "$sealed" in value:
            return dict(value)
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_secret_key(key) and item not in (None, "", True, False):
                out[key] = item if isinstance(item, dict) and "$sealed" in item else REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message, arguments and traceback) goes through :func:`redact_text`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class RememberingSecretStore:
    """A secret store that registers every value it reads or writes with :func:`register_secret`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.kind: str = inner.kind

    def get(self, key: str) -> str:
        value: str = self._inner.get(key)
        register_secret(value)
        return value

    def set(self, key: str, value: str) -> None:
        register_secret(value)
        self._inner.set(key, value)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def __getattr__(self, name: str) -> Any:  # anything else the concrete store offers
        return getattr(self._inner, name)
