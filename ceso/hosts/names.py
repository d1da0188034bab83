"""Validation of a host's names: its ceso name (a queue name, keys and paths) and its login users.

Lengths come from the columns they are stored in (:mod:`ceso.db.bounds`), so a value that
would not fit is refused as bad input before anything is written.
"""

from __future__ import annotations

import re

from ceso.errors import InvalidInputError

__all__ = ["validate_host_name", "validate_login_user"]

# A DNS label's length: the ceso name is often the host's own short name.
_HOST_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62})$")


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else f"{value[:20]!r}… ({len(value)} characters)"


def validate_host_name(name: str) -> str:
    """A host's ceso name: 1-63 of ``[a-z0-9._-]``, starting with a letter or digit.

    It names the Celery queue (``esxi.<name>``) and the secret-store key, so
    nothing else is allowed. Raises InvalidInputError.
    """
    if not _HOST_NAME.match(name or "") or name.endswith((".", "-")):
        raise InvalidInputError(
            f"invalid host name {_shown(name or '')}: use 1-63 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    from ceso.db.bounds import check_text
    from ceso.db.models import Host

    return check_text(name, Host, "name", what="host name")


def validate_login_user(user: str, *, column: str = "username", what: str = "--user") -> str:
    """A user name to log in to a host as (``--user``, or ``--ssh-user`` with ``column="ssh_username"``):
    not empty, no control characters, within its column. Raises InvalidInputError naming ``what``."""
    if not user or any(ord(c) < 32 or ord(c) == 127 for c in user):
        raise InvalidInputError(f"{what} must be a non-empty user name without control characters")
    from ceso.db.bounds import check_text
    from ceso.db.models import Host

    return check_text(user, Host, column, what=what)
