"""Parsers of vim-cmd, vmkfstools and esxcli output, on samples of the real formats (tests/ssh/fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceso.errors import OperationError
from ceso.ssh.parsers import (
    find_fault,
    parse_filesystems,
    parse_getallvms,
    parse_guest,
    parse_inventory,
    parse_ipv4,
    parse_portgroups,
    parse_power_state,
    parse_question,
    parse_registered_id,
    parse_snapshots,
    parse_vmodl,
)

FIXTURES = Path(__file__).with_name("fixtures")


def sample(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_getallvms_cut_at_the_headers_columns() -> None:
    inventory = parse_inventory(sample("getallvms.txt"))
    assert [(v.vmid, v.name, v.datastore, v.path) for v in inventory.vms] == [
        (1, "web01 [old]", "datastore1", "web01 [old]/web01 [old].vmx"),
        (12, "my  vm (2): x", "datastore 2", "my  vm (2)_ x/my  vm (2)_ x.vmx"),
        (13, "db (old); $(x)", "datastore1", "db (old); $(x)/db (old); $(x).vmx"),
    ]
    assert inventory.invalid == ["16", "22"]  # "Skipping invalid VM" before the header and after the rows
    vms = inventory.vms
    assert vms[1].guest_os == "windows9Server64Guest" and vms[1].version == "vmx-14"
    assert vms[1].annotation == "Built by CI"
    assert vms[2].annotation == "first line of a note\nsecond line of the same note"
    assert vms[1].vmx_datastore_path == "[datastore 2] my  vm (2)_ x/my  vm (2)_ x.vmx"


def test_getallvms_real_captures() -> None:
    esxi65 = parse_inventory(sample("getallvms_esxi65_invalid.txt"))
    assert esxi65.invalid == ["6"]
    assert [(v.vmid, v.name, v.guest_os) for v in esxi65.vms][:2] == [
        (1, "ubuntu-desktop", "ubuntu64Guest"),
        (11, "ubuntu-server-1710", "ubuntu64Guest"),
    ]
    assert esxi65.vms[3].path == "windows-7/windows-7.vmx" and esxi65.vms[3].version == "vmx-13"
    (esxi8,) = parse_getallvms(sample("getallvms_esxi8.txt"))
    assert (esxi8.vmid, esxi8.name, esxi8.datastore, esxi8.guest_os, esxi8.version) == (
        5, "rocky8.5", "ESXI-NFS-Share1", "centos7_64Guest", "vmx-21",
    )  # fmt: skip
    assert parse_inventory("Skipping invalid VM '3'\n").invalid == ["3"]


def test_getallvms_empty_and_garbage() -> None:
    assert parse_getallvms(sample("getallvms_empty_esxi8.txt")) == []
    assert parse_getallvms("") == []
    for garbage in (
        "Connection failed\n",
        "Vmid  Name  File  Guest OS  Version  Annotation\n1   x   y   z   vmx-13\n",
    ):
        with pytest.raises(OperationError) as exc:
            parse_getallvms(garbage)
        assert exc.value.code == "unexpected_output"


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("power_getstate_on.txt", "poweredOn"),
        ("power_getstate_off.txt", "poweredOff"),
        ("power_getstate_suspended.txt", "suspended"),
    ],
)
def test_power_state(name: str, state: str) -> None:
    assert parse_power_state(sample(name)) == state


def test_power_state_garbage_is_an_error() -> None:
    with pytest.raises(OperationError):
        parse_power_state("Retrieved runtime info\nPowered sideways\n")


def test_snapshot_tree_depth_parents_and_repeated_names() -> None:
    snaps = parse_snapshots(sample("snapshot_get_tree.txt"))
    assert [(s.id, s.name, s.depth, s.parent_id) for s in snaps] == [
        (1, "before upgrade", 0, None),
        (2, "nightly", 1, 1),
        (4, "nightly", 2, 2),
        (3, "other root", 0, None),
    ]
    assert snaps[0].description == "taken by hand" and snaps[0].state == "powered on"
    assert snaps[1].description == "" and snaps[0].created == "2/23/2015 18:12:50"
    assert parse_snapshots(sample("snapshot_get_none.txt")) == []


@pytest.mark.parametrize(
    "change",
    [
        ("--Snapshot Id          : 1", "--Snapshot Id          : 1a"),  # an id that is not a number
        ("--Snapshot Id          : 1", "--Snapshot Id          : "),  # an empty id
        (
            "--Snapshot Name        : before upgrade",
            "------Snapshot Name        : before upgrade",
        ),  # no parent
        ("--Snapshot Name        : before upgrade\n", ""),  # fields before any name
    ],
)
def test_snapshot_tree_malformed_is_unexpected_output(change: tuple[str, str]) -> None:
    text = sample("snapshot_get_tree.txt").replace(*change, 1)
    with pytest.raises(OperationError) as exc:
        parse_snapshots(text)
    assert exc.value.code == "unexpected_output"


def test_guest_with_tools_lists_every_address() -> None:
    guest = parse_guest(sample("get_guest_tools_running.txt"))
    assert guest.tools_running_status == "guestToolsRunning"
    assert guest.hostname == "web-01" and guest.ip_address == "192.0.2.10"
    assert guest.nics == [("00:50:56:00:01:01", ["192.0.2.10", "2001:db8::10", "fe80::250:56ff:fe00:101"])]
    assert guest.ip_addresses == ["192.0.2.10", "2001:db8::10", "fe80::250:56ff:fe00:101"]


def test_guest_without_tools_on_esxi8_has_no_address() -> None:
    guest = parse_guest(sample("get_guest_no_tools_esxi8.txt"))
    assert guest.tools_running_status == "guestToolsNotRunning"
    assert guest.ip_address is None and guest.ip_addresses == []


def test_vmodl_values() -> None:
    value = parse_vmodl(
        '(vim.X) {\n   a = 1,\n   b = "two, three",\n   c = (string) [\n      "x"\n   ],\n   d = false,\n   e = <unset>,\n   f = (vim.Y) null,\n   g = \'vim.Datastore:ds-1\'\n}\n'
    )
    assert value == {
        "_type": "vim.X",
        "a": 1,
        "b": "two, three",
        "c": ["x"],
        "d": False,
        "e": None,
        "f": None,
        "g": "vim.Datastore:ds-1",
    }
    with pytest.raises(ValueError, match="no VMODL"):
        parse_vmodl("Guest information:\n")


def test_faults_are_found_whatever_else_is_printed() -> None:
    fault = find_fault(sample("fault_notfound_esxi55.txt"))
    assert fault is not None and fault.name == "NotFound"
    assert fault.message == 'Unable to find a VM corresponding to "16"'  # inner quotes are not escaped
    state = find_fault(sample("fault_invalid_power_state.txt"))
    assert state is not None and state.name == "InvalidPowerState"
    assert find_fault(sample("power_getstate_on.txt")) is None
    assert find_fault("   x = (vim.fault.NotFound) null,\n") is None  # a mention is no fault
    assert find_fault(sample("get_guest_tools_running.txt")) is None


def test_copied_question_and_other_questions() -> None:
    question = parse_question(sample("message_copied.txt"))
    assert question is not None and question.id == "_vmx1" and question.is_moved_or_copied
    assert question.choice("I copied") == 2 and question.choice("I moved") == 1 and question.default == 2
    numbered = parse_question(sample("message_numbered_kb.txt"))
    assert numbered is not None and numbered.id == "12" and numbered.choice("I copied") == 2
    other = parse_question(sample("message_cdrom_lock.txt"))
    assert (
        other is not None
        and not other.is_moved_or_copied
        and other.choices == {0: "Yes (_Yes)", 1: "No (_No)"}
    )
    assert parse_question("No message.\n") is None and parse_question("") is None


def test_registered_id() -> None:
    assert parse_registered_id(sample("registervm.txt")) == 21
    with pytest.raises(OperationError):
        parse_registered_id("")


def test_filesystems_67_with_spaces_unnamed_and_unmounted() -> None:
    fs = parse_filesystems(sample("esxcli_filesystem_list_67.txt"))
    assert [(f.volume_name, f.type, f.mounted, f.size_bytes, f.free_bytes) for f in fs] == [
        ("datastore1", "VMFS-6", True, 77846282240, 76336332800),
        ("ssd store", "VMFS-6", True, 127775277056, 126264279040),
        ("", "vfat", True, 261853184, 106246144),
        ("nfs-iso", "NFS", False, 0, 0),
    ]
    assert fs[0].mount_point == "/vmfs/volumes/6116a4d3-0014a12e-65a2-525400f2aa2a"
    assert [f.volume_name for f in fs if f.is_datastore] == ["datastore1", "ssd store"]


def test_an_unnamed_vmfs_volume_is_a_datastore_under_its_uuid() -> None:
    text = sample("esxcli_filesystem_list_8.txt").replace(
        "datastore1                                  6935c9b0",
        "                                            6935c9b0",
    )
    fs = parse_filesystems(text)
    assert fs[1].volume_name == "" and fs[1].type == "VMFS-6"
    assert [f.name for f in fs if f.is_datastore] == ["6935c9b0-1234abcd-9f00-005056b36949"]


def test_filesystems_8_skips_osdata_and_bootbanks() -> None:
    fs = parse_filesystems(sample("esxcli_filesystem_list_8.txt"))
    assert [f.volume_name for f in fs if f.is_datastore] == ["datastore1"]
    assert fs[0].type == "VMFSOS" and fs[0].size_bytes == 34091302912


def test_ipv4_interfaces() -> None:
    ifs = parse_ipv4(sample("esxcli_ipv4_get.txt"))
    assert [(i.name, i.address, i.netmask, i.address_type, i.gateway, i.dhcp_dns) for i in ifs] == [
        ("vmk0", "192.168.8.138", "255.255.255.0", "STATIC", "192.168.8.1", False),
        ("vmk1", "10.0.0.5", "255.255.0.0", "DHCP", "10.0.0.1", True),
    ]


def test_portgroups_with_parentheses_and_wide_counts() -> None:
    groups = parse_portgroups(sample("esxcli_portgroup_list.txt"))
    assert [(g.name, g.vswitch, g.active_clients, g.vlan_id) for g in groups] == [
        ("Management Network", "vSwitch0", 1, 0),
        ("Management Network (1)", "vSwitch0", 1, 28),
        ("VM Network", "vSwitch0", 14, 0),
        ("vMotion", "vSwitch1", 1, 20),
    ]


def test_table_without_header_is_an_error() -> None:
    with pytest.raises(OperationError) as exc:
        parse_filesystems("Error: Unknown command or namespace storage filesystem lst\n")
    assert exc.value.code == "unexpected_output"
    assert parse_filesystems("") == []
