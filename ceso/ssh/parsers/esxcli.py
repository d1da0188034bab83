"""Parsers for ``esxcli`` tables (``storage filesystem list``, ``network ip interface ipv4 get``, ...).

esxcli prints a header line, a line of dash runs, then rows::

    Mount Point                                        Volume Name  UUID    Mounted  Type    Size         Free
    -------------------------------------------------  -----------  ------  -------  ------  -----------  ----------
    /vmfs/volumes/611624d3-0014912e-65a2-525400f29a2a  datastore1   6116...    true  VMFS-6  77846282240  76336332800

Each dash run is sized to the widest value of its column, so slicing every
row at the dash runs' positions is exact even when a cell is empty (a vfat
volume has no name) or holds spaces (a datastore named "Fake Store").
Numbers are right-aligned, text left-aligned; cells are stripped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ceso.errors import OperationError

__all__ = [
    "Filesystem",
    "Ipv4Interface",
    "PortGroup",
    "parse_filesystems",
    "parse_ipv4",
    "parse_portgroups",
    "parse_table",
]


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """Cut ``line`` into one cell per dash run: from the end of the previous run to the start of
    the next, so a right-aligned value wider than its title is still caught whole."""
    cells = []
    for j in range(len(spans)):
        start = spans[j - 1][1] if j > 0 else 0
        end = spans[j + 1][0] if j + 1 < len(spans) else len(line)
        cells.append(line[start:end].strip())
    return cells


def parse_table(text: str, *, what: str) -> list[dict[str, str]]:
    """Rows of an esxcli table as dicts keyed by the header's column titles.

    An empty output is an empty table; output with no dash line raises
    OperationError (code ``unexpected_output``).
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if i > 0 and line.strip() and set(line.strip()) <= {"-", " "}:
            spans = [m.span() for m in re.finditer(r"-+", line)]
            titles = _cells(lines[i - 1], spans)
            return [
                dict(zip(titles, _cells(row, spans), strict=True)) for row in lines[i + 1 :] if row.strip()
            ]
    if not text.strip():
        return []
    raise OperationError(
        f"unexpected output from {what}: no table header in {text.strip()[:200]!r}",
        code="unexpected_output",
        details={"command": what},
    )


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class Filesystem:
    """One volume of ``esxcli storage filesystem list``."""

    mount_point: str
    volume_name: str
    uuid: str
    mounted: bool
    type: str
    size_bytes: int | None
    free_bytes: int | None

    @property
    def is_datastore(self) -> bool:
        """Mounted VMFS and NFS volumes hold VMs, named or not; vfat boot banks and OSDATA (VMFSOS) do not."""
        return bool(self.name) and self.type.upper().startswith(("VMFS-", "NFS")) and self.mounted

    @property
    def name(self) -> str:
        """The datastore's name: its Volume Name, or its UUID when the host shows none.

        ``/vmfs/volumes/<uuid>/`` is a path to the volume whatever its name, so an
        unnamed VMFS volume is still usable under its UUID.
        """
        return self.volume_name or self.uuid


def parse_filesystems(text: str) -> list[Filesystem]:
    rows = parse_table(text, what="esxcli storage filesystem list")
    return [
        Filesystem(
            mount_point=r.get("Mount Point", ""),
            volume_name=r.get("Volume Name", ""),
            uuid=r.get("UUID", ""),
            mounted=r.get("Mounted", "").lower() == "true",
            type=r.get("Type", ""),
            size_bytes=_int(r.get("Size", "")),
            free_bytes=_int(r.get("Free", "")),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Ipv4Interface:
    """One VMkernel interface of ``esxcli network ip interface ipv4 get``."""

    name: str
    address: str
    netmask: str
    broadcast: str
    address_type: str
    gateway: str
    dhcp_dns: bool


def parse_ipv4(text: str) -> list[Ipv4Interface]:
    rows = parse_table(text, what="esxcli network ip interface ipv4 get")
    return [
        Ipv4Interface(
            name=r.get("Name", ""),
            address=r.get("IPv4 Address", ""),
            netmask=r.get("IPv4 Netmask", ""),
            broadcast=r.get("IPv4 Broadcast", ""),
            address_type=r.get("Address Type", ""),
            gateway=r.get("Gateway", ""),
            dhcp_dns=r.get("DHCP DNS", "").lower() == "true",
        )
        for r in rows
    ]


@dataclass(frozen=True)
class PortGroup:
    """One port group of ``esxcli network vswitch standard portgroup list``."""

    name: str
    vswitch: str
    active_clients: int | None
    vlan_id: int | None


def parse_portgroups(text: str) -> list[PortGroup]:
    rows = parse_table(text, what="esxcli network vswitch standard portgroup list")
    return [
        PortGroup(
            name=r.get("Name", ""),
            vswitch=r.get("Virtual Switch", ""),
            active_clients=_int(r.get("Active Clients", "")),
            vlan_id=_int(r.get("VLAN ID", "")),
        )
        for r in rows
    ]
