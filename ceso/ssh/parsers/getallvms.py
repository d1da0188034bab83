"""Parser of ``vim-cmd vmsvc/getallvms``: the registered VMs, cut at the header's column positions.

What hosts print (ESXi 6.5 to 8, samples in tests/ssh/fixtures)::

    Skipping invalid VM '6'
    Vmid          Name                               File                             Guest OS       Version   Annotation
    1      ubuntu-desktop       [HDD] ubuntu-desktop/ubuntu-desktop.vmx           ubuntu64Guest      vmx-13
    11     ubuntu-server-1710   [HDD] ubuntu-server-1710/ubuntu-server-1710.vmx   ubuntu64Guest      vmx-13

Each column is as wide as its widest value or its title, columns are
separated by three spaces, values are left-aligned and titles *centred*
(rounded down). So the header alone does not show where a column starts, but
with the rows it does: the Name column starts three spaces after the widest
id, and a title centred at position ``h`` in a column starting at ``s`` means
the column is ``2 * (h - s) + len(title)`` or one more wide. Cutting every
row at those positions reads names holding `` [``, ``]``, ``(``, ``:`` or
runs of spaces exactly, where a pattern could not tell the name from the
datastore path. Lines that are not rows — ``Skipping invalid VM 'N'`` notes
(a broken registration; printed before the header or after the rows) and the
continuation lines of multi-line annotations — are told apart and kept aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ceso.errors import OperationError

__all__ = ["Inventory", "VmEntry", "parse_getallvms", "parse_inventory"]

_WHAT = "vim-cmd vmsvc/getallvms"
_INVALID = re.compile(r"^Skipping invalid VM '(?P<vmid>[^']*)'\s*$")
_ROW_START = re.compile(r"^(?P<vmid>\d+) {3,}\S")
_FILE = re.compile(r"^\[(?P<ds>[^\]]*)\] (?P<path>.*\.vmx)$")
_SEP = 3


def _unexpected(text: str, why: str) -> OperationError:
    return OperationError(
        f"unexpected output from {_WHAT} ({why}): {text.strip()[:200]!r}",
        code="unexpected_output",
        details={"command": _WHAT},
    )


@dataclass(frozen=True)
class VmEntry:
    """One row of ``vim-cmd vmsvc/getallvms``."""

    vmid: int
    name: str
    datastore: str
    path: str  # relative to the datastore, e.g. "web-01/web-01.vmx"
    guest_os: str | None
    version: str | None
    annotation: str

    @property
    def vmx_datastore_path(self) -> str:
        return f"[{self.datastore}] {self.path}"


@dataclass(frozen=True)
class Inventory:
    """The rows of ``getallvms`` and the ids of the registrations it skipped as invalid."""

    vms: list[VmEntry]
    invalid: list[str] = field(default_factory=list)


def _widths(offset: int, title: str) -> tuple[int, ...]:
    """The column widths that centre ``title`` at ``offset`` from the column's start (rounded down)."""
    base = 2 * offset + len(title)
    return (base, base + 1) if offset > 0 else (len(title), len(title) + 1)


def _cut(rows: list[str], starts: tuple[int, int, int, int]) -> list[tuple[str, str, str, str]] | None:
    """Every row cut at ``starts`` (name, file, guest, version), or None if one does not fit."""
    s_name, s_file, s_guest, s_version = starts
    out = []
    for row in rows:
        if row[s_file - _SEP : s_file] != " " * _SEP or row[s_guest - _SEP : s_guest] != " " * _SEP:
            return None
        name, file = row[s_name : s_file - _SEP].rstrip(), row[s_file : s_guest - _SEP].rstrip()
        guest = row[s_guest : s_version - _SEP].strip()
        if not name or _FILE.match(file) is None or " " in guest:
            return None
        out.append((name, file, guest, row[s_version:]))
    return out


def parse_inventory(text: str) -> Inventory:
    """The VMs ``vmsvc/getallvms`` lists and the invalid registrations it reports.

    Raises OperationError (``unexpected_output``) for output without the
    header or whose rows fit no column layout the header allows.
    """
    lines = text.splitlines()
    invalid = [m.group("vmid") for line in lines if (m := _INVALID.match(line.strip()))]
    header_at = next((i for i, line in enumerate(lines) if line.startswith("Vmid ")), None)
    if header_at is None:
        if all(not line.strip() or _INVALID.match(line.strip()) for line in lines):
            return Inventory([], invalid)
        raise _unexpected(text, "no header")
    header = lines[header_at]
    try:
        h_name = header.index("Name")
        h_file = header.index("File", h_name)
        h_guest = header.index("Guest OS", h_file)
        s_version = header.index("Version", h_guest)
    except ValueError:
        raise _unexpected(text, "unknown header") from None
    body = [line for line in lines[header_at + 1 :] if line.strip() and not _INVALID.match(line.strip())]
    row_at = [
        i for i, line in enumerate(body) if _ROW_START.match(line) and line[s_version:].startswith("vmx-")
    ]
    rows = [body[i] for i in row_at]
    if (row_at[0] if rows else len(body)) > 0:  # only an annotation's continuation may follow a row
        raise _unexpected(text, "a line that is not a row")
    if not rows:
        return Inventory([], invalid)
    s_name = max(4, *(len(_ROW_START.match(r).group("vmid")) for r in rows)) + _SEP  # type: ignore[union-attr]
    cut = None
    for w_name in _widths(h_name - s_name, "Name"):
        s_file = s_name + w_name + _SEP
        for w_file in _widths(h_file - s_file, "File"):
            s_guest = s_file + w_file + _SEP
            w_guest = s_version - _SEP - s_guest
            if w_guest >= len("Guest OS") and h_guest - s_guest == (w_guest - len("Guest OS")) // 2:
                cut = cut or _cut(rows, (s_name, s_file, s_guest, s_version))
    if cut is None:
        raise _unexpected(text, "rows do not fit the header's columns")
    vms: list[VmEntry] = []
    for n, (index, (name, file, guest, rest)) in enumerate(zip(row_at, cut, strict=True)):
        version, _, annotation = rest.partition(" ")
        following = body[index + 1 : row_at[n + 1] if n + 1 < len(row_at) else len(body)]
        match = _FILE.match(file)
        assert match is not None  # checked by _cut
        vms.append(
            VmEntry(
                vmid=int(body[index].split(" ", 1)[0]),
                name=name,
                datastore=match.group("ds"),
                path=match.group("path"),
                guest_os=guest or None,
                version=version or None,
                annotation="\n".join([annotation.strip(), *following]).strip(),
            )
        )
    return Inventory(vms, invalid)


def parse_getallvms(text: str) -> list[VmEntry]:
    """The VMs listed by ``vmsvc/getallvms`` (see :func:`parse_inventory`)."""
    return parse_inventory(text).vms
