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
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from ceso.security.tokens import TOKEN_RE

__all__ = [
    "REDACTED",
    "RedactingFormatter",
    "RememberingSecretStore",
    "is_secret_key",
    "redact",
    "redact_text",
    "register_secret",
]

REDACTED = "[REDACTED]"
MIN_KNOWN = 6

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

_known: set[str] = set()
_known_re: list[re.Pattern[str]] = []  # zero or one compiled alternation of the known values
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that it is redacted wherever it appears later in this process."""
    if not value or len(value) < MIN_KNOWN or value in _known:
        return
    with _lock:
        _known.add(value)
        ordered = sorted(_known, key=len, reverse=True)  # longest first: no partial leftovers
        _known_re[:] = [re.compile("|".join(re.escape(v) for v in ordered))]


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
    for known in _known_re[:1]:
        text = known.sub(REDACTED, text)
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
