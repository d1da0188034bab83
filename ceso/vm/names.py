"""VM names: what ESXi accepts and what keeps a datastore path safe.

A VM name becomes a directory and file names on the datastore
(``[ds] NAME/NAME.vmx``) and appears in shell commands on the SSH route, so
ceso refuses anything that could escape the directory or break a path.
"""

from __future__ import annotations

import unicodedata

from ceso.errors import InvalidInputError

__all__ = ["MAX_VM_NAME", "validate_vm_name"]

MAX_VM_NAME = 80  # ESXi refuses longer display names; SQL columns holding VM names are this wide
_FORBIDDEN = set('/\\%[]"*?<>|:')


def validate_vm_name(name: str, *, field: str = "VM name") -> str:
    """Return ``name`` if it is a safe VM name; InvalidInputError naming the problem otherwise.

    Refused: empty, longer than 80 characters, leading/trailing space or dot,
    ``.``/``..``, path separators and datastore metacharacters
    (``/ \\ % [ ] " * ? < > | :``), and control characters (newlines included).
    """
    if not name:
        raise InvalidInputError(f"{field} is empty")
    if len(name) > MAX_VM_NAME:
        raise InvalidInputError(f"{field} {name[:20]!r}... is {len(name)} characters; at most {MAX_VM_NAME}")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidInputError(f"{field} {name!r} contains control characters")
    bad = sorted(set(name) & _FORBIDDEN)
    if bad:
        raise InvalidInputError(
            f"{field} {name!r} contains {' '.join(bad)}, which would break a datastore path"
        )
    if name in (".", "..") or name != name.strip() or name.startswith(".") or name.endswith("."):
        raise InvalidInputError(f"{field} {name!r} must not start or end with a space or a dot")
    return name
