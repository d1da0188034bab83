"""Validation of names that become queue names, keys and paths."""

from __future__ import annotations

import re

from ceso.errors import InvalidInputError

__all__ = ["validate_host_name"]

_HOST_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62})$")


def validate_host_name(name: str) -> str:
    """A host's ceso name: 1-63 of ``[a-z0-9._-]``, starting with a letter or digit.

    It names the Celery queue (``esxi.<name>``) and the secret-store key, so
    nothing else is allowed. Raises InvalidInputError.
    """
    if not _HOST_NAME.match(name or "") or name.endswith((".", "-")):
        raise InvalidInputError(
            f"invalid host name {name!r}: use 1-63 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name
