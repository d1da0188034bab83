"""Agent tokens: 256 random bits, shown once, stored as their SHA-256.

Why SHA-256 and not scrypt or bcrypt: slow hashes protect *low-entropy*
secrets (passwords a person chose) from offline guessing. A token here is 32
bytes from the OS CSPRNG; guessing one is 2**256 work whatever the hash
costs, so a fast hash loses nothing, and it lets a token be found with one
indexed lookup of its hash instead of trying a slow hash against every agent.
Comparing hashes (not tokens) also means a timing difference leaks at most a
prefix of a hash, which says nothing about the token.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["TOKEN_PREFIX", "TOKEN_RE", "hash_token", "looks_like_token", "new_token"]

#: Tokens start with this so that they are recognisable (and redacted) wherever they leak.
TOKEN_PREFIX = "ceso_"  # noqa: S105  (a prefix, not a secret)
TOKEN_RE = re.compile(r"ceso_[A-Za-z0-9_-]{40,}")


def new_token() -> str:
    """A fresh token: ``ceso_`` + 43 URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(value: str) -> bool:
    return bool(TOKEN_RE.fullmatch(value))
