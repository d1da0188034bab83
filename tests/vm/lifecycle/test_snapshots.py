"""`ceso vm snapshot create/list/revert/delete` end to end, read back with pyVmomi."""

from __future__ import annotations

from typing import Any

from tests.vm.lifecycle.conftest import Lab, calls_of


def _tree(info: Any) -> list[tuple[str, str | None]]:
    """(name, parent name) of every snapshot, parents first, as the host reports them."""
    out: list[tuple[str, str | None]] = []

    def walk(trees: Any, parent: str | None) -> None:
        for t in trees or []:
            out.append((t.name, parent))
            walk(t.childSnapshotList, t.name)

    walk(info.rootSnapshotList if info is not None else [], None)
    return out


def _current(info: Any) -> str | None:
    if info is None:
        return None
    found = []

    def walk(trees: Any) -> None:
        for t in trees or []:
            if t.snapshot._moId == info.currentSnapshot._moId:
                found.append(t.name)
            walk(t.childSnapshotList)

    walk(info.rootSnapshotList)
    return found[0]


def test_create_list_revert_delete(lab: Lab) -> None:
    name = lab.vm("snap", power_on=True)

    job = lab.ok("vm", "snapshot", "create", name, "before-upgrade", "--description", "pre 24.04")
    assert calls_of(job) == ["VirtualMachine.CreateSnapshot_Task"]
    assert job["result"]["snapshot"] == "before-upgrade" and job["result"]["current"] is True
    job = lab.ok("vm", "snapshot", "create", name, "with memory", "--memory", "--quiesce")
    assert job["steps"][-2]["calls"][0]["args"] == {
        "vm": lab.get(name)._moId, "name": "with memory", "memory": True, "quiesce": True,
    }  # fmt: skip
    assert _tree(lab.snapshot_info(name)) == [("before-upgrade", None), ("with memory", "before-upgrade")]

    listed = lab.cli("--json", "vm", "snapshot", "list", name)
    assert listed.exit_code == 0, listed.stderr
    rows = listed.json()
    assert [(r["name"], r["parent"], r["current"]) for r in rows] == [
        ("before-upgrade", None, False),
        ("with memory", "before-upgrade", True),
    ]
    assert rows[0]["description"] == "pre 24.04" and rows[0]["created"] and rows[0]["state"] == "poweredOn"
    assert set(rows[0]) == {
        "id",
        "name",
        "description",
        "created",
        "state",
        "quiesced",
        "parent",
        "parent_id",
        "current",
    }
    human = lab.cli("vm", "snapshot", "list", name)
    assert human.stdout.splitlines()[1].startswith("  with memory (current)")
    assert lab.job_count() == 2  # list is a read, not a job

    job = lab.ok("vm", "snapshot", "revert", name, "before-upgrade")
    assert calls_of(job) == ["VirtualMachineSnapshot.RevertToSnapshot_Task"]
    assert _current(lab.snapshot_info(name)) == "before-upgrade"

    job = lab.ok("vm", "snapshot", "delete", name, "with memory")
    assert calls_of(job) == ["VirtualMachineSnapshot.RemoveSnapshot_Task"]
    assert job["result"]["removed"] == ["with memory"]
    assert _tree(lab.snapshot_info(name)) == [("before-upgrade", None)]

    lab.ok("vm", "snapshot", "create", name, "child")
    assert _tree(lab.snapshot_info(name)) == [("before-upgrade", None), ("child", "before-upgrade")]
    job = lab.ok("vm", "snapshot", "delete", name, "before-upgrade", "--children")
    assert job["result"]["removed"] == ["before-upgrade", "child"]
    assert lab.snapshot_info(name) is None
    assert lab.cli("--json", "vm", "snapshot", "list", name).json() == []


def test_refusals_change_nothing(lab: Lab) -> None:
    name = lab.vm("snr")
    vm = lab.get(name)
    for snap in ("dup", "dup", "solo"):
        vm.CreateSnapshot_Task(name=snap, description="", memory=False, quiesce=False)
    template = lab.vm("tmpl")
    assert lab.cli("template", "add", template, "--host", lab.host).exit_code in (0, 1)
    tree = _tree(lab.snapshot_info(name))
    cases: list[tuple[list[str], int, str]] = [
        (["revert", name, "dup"], 5, "2 snapshots named 'dup'"),
        (["delete", name, "dup"], 5, "ceso will not guess"),
        (["create", name, "dup"], 5, "already has a snapshot 'dup'"),
        (["create", name, "solo"], 5, "already has a snapshot 'solo'"),
        (["revert", name, "nope"], 4, "has no snapshot 'nope'"),
        (["delete", name, "nope", "--children"], 4, "has no snapshot 'nope'"),
        (["create", name, ""], 2, "snapshot name is empty"),
        (["create", name, "two\nlines"], 2, "control characters"),
        (["create", name, "x" * 81], 2, "at most 80"),
        (["create", name, " padded"], 2, "start or end with a space"),
        (["revert", name, "bad\tname"], 2, "control characters"),
        (["create", name, "ok", "--description", "bell\a"], 2, "--description"),
        (["create", "nope-404", "s1"], 4, "no VM named"),
        (["list", "nope-404"], 4, "no VM named"),
        (["create", template, "s1"], 5, "registered template"),
    ]
    before = lab.job_count()
    for args, code, fragment in cases:
        lab.refused(["vm", "snapshot", *args], code, fragment)
    assert _tree(lab.snapshot_info(name)) == tree and lab.snapshot_info(template) is None
    assert lab.job_count() == before
