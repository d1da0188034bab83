"""Parsers of the ESXi shell's output: vim-cmd, vmkfstools and esxcli (see docs/ssh-route.md)."""

from __future__ import annotations

from ceso.ssh.parsers.esxcli import (
    Filesystem,
    Ipv4Interface,
    PortGroup,
    parse_filesystems,
    parse_ipv4,
    parse_portgroups,
    parse_table,
)
from ceso.ssh.parsers.getallvms import Inventory, VmEntry, parse_getallvms, parse_inventory
from ceso.ssh.parsers.vimcmd import (
    Fault,
    GuestReport,
    Question,
    SnapshotEntry,
    find_fault,
    parse_guest,
    parse_power_state,
    parse_question,
    parse_registered_id,
    parse_snapshots,
)
from ceso.ssh.parsers.vmodl import parse_vmodl

__all__ = [
    "Fault",
    "Filesystem",
    "GuestReport",
    "Inventory",
    "Ipv4Interface",
    "PortGroup",
    "Question",
    "SnapshotEntry",
    "VmEntry",
    "find_fault",
    "parse_filesystems",
    "parse_getallvms",
    "parse_guest",
    "parse_inventory",
    "parse_ipv4",
    "parse_portgroups",
    "parse_power_state",
    "parse_question",
    "parse_registered_id",
    "parse_snapshots",
    "parse_table",
    "parse_vmodl",
]
