"""Command builders: every argument arrives as one literal word; nothing outside /vmfs/volumes/ is touched."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from ceso.errors import InvalidInputError
from ceso.ssh import commands as cmd

NASTY = [
    "it's",
    'say "hi"',
    "$(touch /tmp/pwned)",
    "a; rm -rf /",
    "new\nline",
    "back`tick`",
    "tab\there",
    "*",
    "~",
    "-rf",
]


@pytest.mark.parametrize("name", NASTY)
def test_a_name_is_one_literal_argument_to_a_real_shell(name: str) -> None:
    command = cmd.snapshot_create(7, name, f"desc {name}", memory=False, quiesce=True)
    assert shlex.split(command.line) == [
        "vim-cmd",
        "vmsvc/snapshot.create",
        "7",
        name,
        f"desc {name}",
        "0",
        "1",
    ]
    # What /bin/sh makes of the line is exactly the argv: printf shows each word on its own line.
    probe = "printf '%s\\0' " + " ".join(shlex.quote(a) for a in command.argv[1:])
    out = subprocess.run(["/bin/sh", "-c", probe], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [a.encode() for a in command.argv[1:]]


def test_paths_are_quoted_and_confined() -> None:
    src = cmd.datastore_file("datastore 1", "tmpl/tmpl.vmdk")
    dst = cmd.datastore_file("datastore 1", "it's $(x); y/it's $(x); y.vmdk")
    line = cmd.thin_clone(src, dst).line
    assert shlex.split(line) == ["vmkfstools", "-i", src, dst, "-d", "thin"]
    assert cmd.from_datastore_path("[datastore 1] a b/c.vmx") == "/vmfs/volumes/datastore 1/a b/c.vmx"


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/vmfs/volumes/",
        "/vmfs/volumes/ds",
        "/vmfs/volumes/ds/../../etc/shadow",
        "/vmfs/volumes/ds/a/./b",
        "/vmfs/volumes/ds//b",
        "/vmfs/volumes/ds/new\nline.vmx",
        "relative/path",
        "/vmfs/volumesX/ds/a",
    ],
)
def test_paths_outside_a_datastore_are_refused(path: str) -> None:
    with pytest.raises(InvalidInputError):
        cmd.volume_path(path)
    with pytest.raises(InvalidInputError):
        cmd.thin_clone(path, "/vmfs/volumes/ds/a.vmdk")
    with pytest.raises(InvalidInputError):
        cmd.cat_file(path)
    with pytest.raises(InvalidInputError):
        cmd.delete_disk(path)


def test_bad_datastore_and_ids_are_refused() -> None:
    for ds in ("", "a/b", "..", "."):
        with pytest.raises(InvalidInputError):
            cmd.datastore_file(ds, "x.vmx")
    with pytest.raises(InvalidInputError):
        cmd.from_datastore_path("ds/x.vmx")
    for bad in (-1, True, "3"):
        with pytest.raises(InvalidInputError):
            cmd.power_state(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        cmd.power(1, "explode")
    with pytest.raises(InvalidInputError):
        cmd.answer_question(1, "_vmx1; reboot", 2)
    with pytest.raises(InvalidInputError):
        cmd.register_vm("/vmfs/volumes/ds/a/a.vmx", "bad\nname")
    with pytest.raises(InvalidInputError):
        cmd.command_exists("rm")


def test_exact_command_lines() -> None:
    assert cmd.get_allvms().line == "vim-cmd vmsvc/getallvms"
    assert cmd.power(12, "shutdown").line == "vim-cmd vmsvc/power.shutdown 12"
    assert cmd.snapshot_remove(12, 4).line == "vim-cmd vmsvc/snapshot.remove 12 4"
    assert cmd.answer_question(12, "_vmx1", 2).line == "vim-cmd vmsvc/message 12 _vmx1 2"
    assert cmd.register_vm("/vmfs/volumes/ds/a b/a b.vmx", "a b").line == (
        "vim-cmd solo/registervm '/vmfs/volumes/ds/a b/a b.vmx' 'a b'"
    )
    assert (
        cmd.extend_disk("/vmfs/volumes/ds/a/a.vmdk", 40 * 2**30).line
        == "vmkfstools -X 40G /vmfs/volumes/ds/a/a.vmdk"
    )
    assert cmd.extend_disk("/vmfs/volumes/ds/a/a.vmdk", 1536 * 2**20).argv[2] == "1536M"
    assert (
        cmd.cat_file("/vmfs/volumes/ds/a b/a b-flat.vmdk").line == "cat '/vmfs/volumes/ds/a b/a b-flat.vmdk'"
    )
    assert cmd.delete_disk("/vmfs/volumes/ds/a/a.vmdk").line == "vmkfstools -U /vmfs/volumes/ds/a/a.vmdk"
    assert cmd.filesystem_list().line == "esxcli storage filesystem list"
    assert cmd.ipv4_interfaces().line == "esxcli network ip interface ipv4 get"
    with pytest.raises(InvalidInputError):
        cmd.extend_disk("/vmfs/volumes/ds/a/a.vmdk", 1000)
