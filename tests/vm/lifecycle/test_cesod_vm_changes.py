"""cesod's vm.reconfigure and vm.snapshot.* as an agent over HTTP, effects read back with pyVmomi."""

from __future__ import annotations

from typing import Any

from tests.security.helpers import add_agent, audit_rows
from tests.support.vms import devices_of
from tests.vm.lifecycle.conftest import Lab, calls_of
from tests.vm.lifecycle.test_snapshots import _current, _tree

GIB_KB = 1024 * 1024
CHANGES = ("vm.reconfigure", "vm.snapshot.create", "vm.snapshot.revert", "vm.snapshot.delete")


def _hardware(lab: Lab, name: str) -> tuple[int, int, int]:
    vm = lab.get(name)
    (disk,) = devices_of(vm, "VirtualDisk")
    return vm.config.hardware.numCPU, vm.config.hardware.memoryMB, disk.capacityInKB


def _ok(daemon: Any, token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = daemon.call(token, method, {**params, "wait": True, "timeout": 60}, timeout=90)
    assert "result" in answer, answer
    job: dict[str, Any] = answer["result"]
    assert job["state"] == "succeeded" and job["kind"] == method and job["actor"] == "agent:ops", job
    return job


def test_standard_agent_reconfigures_and_snapshots(
    lab: Lab, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    token = add_agent(lab.cli, "ops", "standard")
    daemon = start_cesod()
    name = lab.vm("rpc")
    assert _hardware(lab, name) == (2, 2048, 16 * GIB_KB)

    described = {m["name"]: m for m in daemon.call(token, "system.describe")["result"]["methods"]}
    assert {*CHANGES, "vm.snapshot.list"} <= set(described)
    grow = described["vm.reconfigure"]["params"]["properties"]["disk_grow"]
    assert (grow["type"], grow["items"]["type"]) == ("array", "string")
    assert grow["items"]["maxLength"] > 0  # every string input is bounded
    assert "DISK=SIZE" in grow["description"]

    job = _ok(daemon, token, "vm.reconfigure",
              {"name": name, "cpus": 4, "memory": "4G", "disk_grow": ["Hard disk 1=24G"]})  # fmt: skip
    assert calls_of(job) == ["VirtualMachine.ReconfigVM_Task"]
    assert _hardware(lab, name) == (4, 4096, 24 * GIB_KB)
    plan = daemon.call(token, "vm.reconfigure", {"name": name, "disk_grow": ["1=32G"], "dry_run": True})
    assert plan["result"]["plan"][-1].startswith("  ") and _hardware(lab, name)[2] == 24 * GIB_KB

    base = {"name": name, "host": lab.host}
    _ok(daemon, token, "vm.snapshot.create", {**base, "snapshot": "before", "description": "pre change"})
    assert _tree(lab.snapshot_info(name)) == [("before", None)]
    _ok(daemon, token, "vm.snapshot.create", {**base, "snapshot": "after", "memory": False, "quiesce": False})
    assert _tree(lab.snapshot_info(name)) == [("before", None), ("after", "before")]
    assert _current(lab.snapshot_info(name)) == "after"

    rows = daemon.call(token, "vm.snapshot.list", {"name": name})["result"]
    assert [(r["name"], r["parent"], r["current"], r["description"]) for r in rows] == [
        ("before", None, False, "pre change"),
        ("after", "before", True, ""),
    ]
    assert rows == lab.cli("--json", "vm", "snapshot", "list", name).json()

    job = _ok(daemon, token, "vm.snapshot.revert", {**base, "snapshot": "before"})
    assert calls_of(job) == ["VirtualMachineSnapshot.RevertToSnapshot_Task"]
    assert _current(lab.snapshot_info(name)) == "before"
    assert _tree(lab.snapshot_info(name)) == [("before", None), ("after", "before")]

    job = _ok(daemon, token, "vm.snapshot.delete", {**base, "snapshot": "before", "children": True})
    assert job["result"]["removed"] == ["before", "after"]
    assert lab.snapshot_info(name) is None
    assert daemon.call(token, "vm.snapshot.list", {"name": name})["result"] == []
    submitted = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'job.submitted'")
    assert [(r["operation"], r["actor"], r["source"]) for r in submitted] == [
        (op, "agent:ops", "cesod")
        for op in ("vm.reconfigure", "vm.snapshot.create", "vm.snapshot.create", "vm.snapshot.revert",
                   "vm.snapshot.delete")
    ]  # fmt: skip


def test_refusals_submit_nothing(lab: Lab, start_cesod: Any, ceso_env: dict[str, str]) -> None:
    viewer = add_agent(lab.cli, "viewer")
    ops = add_agent(lab.cli, "ops", "standard")
    daemon = start_cesod()
    name = lab.vm("rpcno")
    before = _hardware(lab, name)

    described = {m["name"] for m in daemon.call(viewer, "system.describe")["result"]["methods"]}
    assert "vm.snapshot.list" in described and not described & set(CHANGES)
    assert daemon.call(viewer, "vm.snapshot.list", {"name": name})["result"] == []
    calls = [
        ("vm.reconfigure", {"name": name, "cpus": 4, "disk_grow": ["1=24G"]}),
        ("vm.snapshot.create", {"name": name, "snapshot": "s1"}),
        ("vm.snapshot.revert", {"name": name, "snapshot": "s1"}),
        ("vm.snapshot.delete", {"name": name, "snapshot": "s1", "children": True}),
    ]
    for method, params in calls:
        error = daemon.call(viewer, method, {**params, "wait": True})["error"]
        assert (error["code"], error["data"]["code"]) == (-32003, "not_permitted"), error
        assert f"may not {method}: it needs mode standard" in error["message"]
    refusals = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'access.refused'")
    assert [(r["operation"], r["actor"], r["source"], r["vm"]) for r in refusals] == [
        (method, "agent:viewer", "cesod", name) for method, _ in calls
    ]

    for entry in ("24G", "=24G", "1=", "Hard disk 1"):
        params = {"name": name, "cpus": 4, "disk_grow": ["1=24G", entry]}
        error = daemon.call(ops, "vm.reconfigure", params)["error"]
        assert (error["code"], error["data"]["code"]) == (-32602, "invalid_input"), error
        assert error["message"].startswith(f"disk_grow entry {entry!r} is not DISK=SIZE (e.g. 1=40G"), error
    error = daemon.call(ops, "vm.reconfigure", {"name": name, "disk_grow": "1=24G"})["error"]
    assert (error["code"], error["data"]["code"]) == (-32602, "invalid_params")
    assert "'disk_grow' must be an array" in error["message"]
    error = daemon.call(ops, "vm.snapshot.delete", {"name": name, "snapshot": "s1", "force": True})["error"]
    assert error["code"] == -32602 and "unknown param 'force'" in error["message"]

    assert _hardware(lab, name) == before and lab.snapshot_info(name) is None
    assert lab.job_count() == 0
    assert audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'job.submitted'") == []
