"""Registered hosts' login data read with the database driver, for quick reads such as ``vm list``.

Same contract as :mod:`ceso.db.direct`: None when the direct path cannot
answer, and the caller uses the SQLAlchemy registry instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from ceso.db.direct import DirectReadUnavailable, fetch_all, open_readonly
from ceso.errors import NotFoundError

__all__ = ["HostLogin", "read_host_logins", "unknown_host"]


@dataclass(frozen=True)
class HostLogin:
    """What opening a session to a host needs (the password stays in the secret store)."""

    name: str
    url: str
    username: str
    thumbprint: str | None


def unknown_host(name: str, known: list[str]) -> NotFoundError:
    """The error for an unregistered host name, listing the registered ones."""
    return NotFoundError(f"unknown host {name!r} (registered: {', '.join(known) or 'none'})")


def read_host_logins(database_url: str, name: str | None = None) -> list[HostLogin] | None:
    """Host ``name`` (NotFoundError if unknown), or every host by name; None if the direct path cannot answer."""
    try:
        with open_readonly(database_url) as conn:
            if conn is None:
                return None
            rows = fetch_all(conn, "SELECT name, url, username, thumbprint FROM hosts ORDER BY name")
    except DirectReadUnavailable:
        return None
    hosts = [HostLogin(r["name"], r["url"], r["username"], r["thumbprint"]) for r in rows]
    if name is None:
        return hosts
    found = [h for h in hosts if h.name == name]
    if not found:
        raise unknown_host(name, [h.name for h in hosts])
    return found
