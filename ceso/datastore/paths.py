"""``HOST:[DS] PATH`` as the ``datastore`` commands take it, and paths held inside their datastore.

A path is relative to its datastore's root: ``iso/ubuntu.iso``, never ``/iso/ubuntu.iso`` nor
``iso/../../etc``. Every refusal is InvalidInputError (exit 2) naming the value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ceso.errors import InvalidInputError

__all__ = ["PART_SUFFIX", "DatastoreRef", "clean_path", "location_host", "parse_location"]

#: An upload's bytes wait under this suffix until they are complete (then renamed into place).
PART_SUFFIX = ".ceso-part"

_LOCATION = re.compile(r"^(?P<host>[^:\[\]\s]+):\[(?P<ds>[^\]/]+)\]\s*(?P<path>.*)$", re.DOTALL)


@dataclass(frozen=True)
class DatastoreRef:
    """A file or folder ``path`` (relative, cleaned; ``""`` is the root) on ``datastore`` of ``host``."""

    host: str
    datastore: str
    path: str

    def __str__(self) -> str:
        return f"{self.host}:[{self.datastore}] {self.path}".rstrip()

    @property
    def vsphere_path(self) -> str:
        """``[datastore] path`` as vSphere writes it."""
        return f"[{self.datastore}] {self.path}".rstrip()


def _no_controls(value: str, what: str) -> None:
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise InvalidInputError(f"{what} {value!r} contains control characters")


def clean_path(path: str, *, root_ok: bool = False) -> str:
    """``path`` relative to the datastore's root, without a trailing ``/``.

    Refused (InvalidInputError): an absolute path, a ``.`` or ``..`` component, an empty
    component (``a//b``), a backslash or a control character, and the root itself (``""``)
    unless ``root_ok``. Nothing is resolved: a refused path is never "fixed".
    """
    _no_controls(path, "datastore path")
    if path.startswith("/"):
        raise InvalidInputError(
            f"datastore path {path!r} is absolute: give it relative to the datastore, e.g. iso/file.iso"
        )
    if "\\" in path:
        raise InvalidInputError(f"datastore path {path!r} contains a backslash")
    stripped = path.rstrip("/")
    if not stripped:
        if root_ok:
            return ""
        raise InvalidInputError("a path inside the datastore is needed here, not its root")
    parts = stripped.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(f"datastore path {path!r} must stay inside the datastore (no ., .. or //)")
    return stripped


def location_host(location: str) -> str | None:
    """The host ``HOST:[DS]`` names (what the audit records of a datastore command), or None."""
    match = _LOCATION.match(location)
    return match["host"] if match else None


def parse_location(location: str, path: str | None = None, *, root_ok: bool = False) -> DatastoreRef:
    """``HOST:[DS]`` and ``PATH`` (or ``HOST:[DS] PATH`` as one word) as a :class:`DatastoreRef`.

    InvalidInputError for another form, a path given twice, or a path :func:`clean_path` refuses.
    """
    match = _LOCATION.match(location)
    if match is None:
        raise InvalidInputError(f"{location!r} is not a datastore location like esxi-a:[datastore1]")
    inline = match["path"].strip()
    if inline and path is not None:
        raise InvalidInputError(f"{location!r} already names a path; give the path once")
    _no_controls(match["ds"], "datastore name")
    return DatastoreRef(match["host"], match["ds"], clean_path(inline or path or "", root_ok=root_ok))
