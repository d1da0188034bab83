"""The simulator's Changed Block Tracking emulation (ops/simulator/main.go), read through pyVmomi.

Each rule below is one a real host follows: changeTrackingEnabled cannot be switched while the VM
has snapshots and takes effect at the next snapshot, each snapshot carries new per-disk changeIds,
``changeId="*"`` lists the allocated areas, a known changeId the areas changed since, and an
unknown or reset changeId is refused. Disks are changed by writing into their ``-flat.vmdk`` on the
datastore directory, as a guest's writes would land there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyVmomi

from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, read_property

_pyvmomi: Any = pyVmomi
vim: Any = _pyvmomi.vim
vmodl: Any = _pyvmomi.vmodl

MiB = 1 << 20
SPAN = 4 * MiB  # the host answers at most this much of the disk per call: callers must loop
CHANGE_ID = re.compile(r"^[0-9a-f]{2}( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7}/\d+$")


@pytest.fixture(scope="module")
def host() -> Iterator[SimulatorHost]:
    with SimulatorHost.start(extra_args=["-cbt-span", str(SPAN)]) as h:
        yield h


@pytest.fixture()
def si(host: SimulatorHost) -> Any:
    return host.connect()


_count = iter(range(1000))


def _new_vm(si: Any) -> Any:
    return create_vm(si, f"cbt{next(_count)}", disk_gb=1)


def _flat(host: SimulatorHost, vm: Any) -> Path:
    name: str = vm.name
    return host.datastore_dir() / name / f"{name}-flat.vmdk"


def _write(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _ok(task: Any) -> None:
    assert task.info.state == "success", task.info.error


def _set_cbt(vm: Any, on: bool) -> Any:
    return vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(changeTrackingEnabled=on))


def _snapshot(vm: Any, name: str) -> Any:
    task = vm.CreateSnapshot_Task(name=name, description="", memory=False, quiesce=False)
    _ok(task)
    return task.info.result


def _disk(obj_config: Any) -> Any:
    return next(d for d in obj_config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))


def _change_id(si: Any, snap: Any) -> str:
    cid: str = _disk(read_property(si, snap, "config")).backing.changeId
    return cid


def _areas(vm: Any, snap: Any, key: int, change_id: str) -> list[tuple[int, int]]:
    """Every (start, length) the host reports, looping over DiskChangeInfo until the capacity."""
    capacity = _disk(vm.config).capacityInKB * 1024  # the simulator leaves capacityInBytes unset
    out: list[tuple[int, int]] = []
    offset, calls = 0, 0
    while offset < capacity:
        info = vm.QueryChangedDiskAreas(snapshot=snap, deviceKey=key, startOffset=offset, changeId=change_id)
        assert info.startOffset == offset
        assert 0 < info.length <= SPAN
        for area in info.changedArea or []:
            assert offset <= area.start and area.start + area.length <= offset + info.length
            if out and out[-1][0] + out[-1][1] == area.start:  # an area cut at a span boundary
                out[-1] = (out[-1][0], out[-1][1] + area.length)
            else:
                out.append((area.start, area.length))
        offset += info.length
        calls += 1
    assert calls == -(-capacity // SPAN)
    return out


def test_allocated_and_changed_areas_follow_the_flat_file(host: SimulatorHost, si: Any) -> None:
    vm = _new_vm(si)
    key = _disk(vm.config).key
    flat = _flat(host, vm)
    _write(flat, 0, b"\x01" * MiB)
    _write(flat, 9 * MiB, b"\x02" * (2 * MiB))  # crosses the 8 MiB span boundary

    _ok(_set_cbt(vm, True))
    assert vm.config.changeTrackingEnabled is True
    s1 = _snapshot(vm, "b1")
    id1 = _change_id(si, s1)
    assert CHANGE_ID.match(id1), id1
    assert _areas(vm, s1, key, "*") == [(0, MiB), (9 * MiB, 2 * MiB)]
    assert _areas(vm, s1, key, id1) == []

    # Change one 64 KiB block, rewrite another with the same bytes, and add data past the end.
    _write(flat, 128 * 1024, b"\x03" * 100)
    _write(flat, 9 * MiB, b"\x02" * 4096)
    _write(flat, 20 * MiB, b"\x04" * MiB)
    s2 = _snapshot(vm, "b2")
    id2 = _change_id(si, s2)
    assert CHANGE_ID.match(id2) and id2 != id1
    assert id2.split("/")[0] == id1.split("/")[0]  # same tracking epoch, next sequence
    assert _change_id(si, s1) == id1  # the older snapshot keeps the changeId it was taken with
    assert _areas(vm, s2, key, id1) == [(128 * 1024, 64 * 1024), (20 * MiB, MiB)]
    assert _areas(vm, s2, key, "*") == [(0, MiB), (9 * MiB, 2 * MiB), (20 * MiB, MiB)]
    assert _areas(vm, s2, key, id2) == []
    # A punched hole is a change too (the data is gone).
    os.truncate(flat, 20 * MiB)
    s3 = _snapshot(vm, "b3")
    assert _areas(vm, s3, key, id2) == [(20 * MiB, MiB)]
    assert _areas(vm, s3, key, id1) == [(128 * 1024, 64 * 1024)]


def test_toggling_is_refused_while_snapshots_exist(si: Any) -> None:
    vm = _new_vm(si)
    _snapshot(vm, "user")
    task = _set_cbt(vm, True)
    assert task.info.state == "error"
    assert isinstance(task.info.error, vim.fault.InvalidState)
    assert not vm.config.changeTrackingEnabled
    _ok(vm.RemoveAllSnapshots_Task())
    _ok(_set_cbt(vm, True))
    assert vm.config.changeTrackingEnabled is True
    _snapshot(vm, "b1")
    assert _set_cbt(vm, False).info.state == "error"
    assert vm.config.changeTrackingEnabled is True


def test_tracking_takes_effect_at_the_next_snapshot(si: Any) -> None:
    vm = _new_vm(si)
    key = _disk(vm.config).key
    _ok(_set_cbt(vm, True))
    assert not _disk(vm.config).backing.changeId
    with pytest.raises(vim.fault.FileFault):  # no change log yet
        vm.QueryChangedDiskAreas(deviceKey=key, startOffset=0, changeId="*")
    s1 = _snapshot(vm, "b1")
    assert _areas(vm, s1, key, "*") == []


def test_unknown_malformed_and_reset_change_ids(si: Any) -> None:
    vm = _new_vm(si)
    key = _disk(vm.config).key
    capacity = _disk(vm.config).capacityInKB * 1024
    _ok(_set_cbt(vm, True))
    s1 = _snapshot(vm, "b1")
    id1 = _change_id(si, s1)
    epoch = id1.split("/")[0]

    with pytest.raises(vim.fault.FileFault) as refused:
        vm.QueryChangedDiskAreas(snapshot=s1, deviceKey=key, startOffset=0, changeId=f"{epoch}/9")
    assert refused.value.file.endswith("-ctk.vmdk")
    other = "52" + epoch[2:] if not epoch.startswith("52") else "53" + epoch[2:]
    with pytest.raises(vim.fault.FileFault):
        vm.QueryChangedDiskAreas(snapshot=s1, deviceKey=key, startOffset=0, changeId=f"{other}/1")
    for bad in ("", "abc", f"{epoch}/x"):
        with pytest.raises(vmodl.fault.InvalidArgument):
            vm.QueryChangedDiskAreas(snapshot=s1, deviceKey=key, startOffset=0, changeId=bad)
    with pytest.raises(vmodl.fault.InvalidArgument):
        vm.QueryChangedDiskAreas(snapshot=s1, deviceKey=key + 77, startOffset=0, changeId="*")
    for offset in (-1, capacity):
        with pytest.raises(vmodl.fault.InvalidArgument):
            vm.QueryChangedDiskAreas(snapshot=s1, deviceKey=key, startOffset=offset, changeId="*")

    # A revert resets tracking: changeIds issued before it are refused, new ones start an epoch.
    # The simulator gives this task a snapshot as entity, which pyVmomi cannot read as task.info.
    assert read_property(si, s1.RevertToSnapshot_Task(), "info.state") == "success"
    s2 = _snapshot(vm, "b2")
    id2 = _change_id(si, s2)
    assert id2.split("/")[0] != epoch
    with pytest.raises(vim.fault.FileFault):
        vm.QueryChangedDiskAreas(snapshot=s2, deviceKey=key, startOffset=0, changeId=id1)
    assert _areas(vm, s2, key, id2) == []


def test_resize_and_switching_off_reset_tracking(si: Any) -> None:
    vm = _new_vm(si)
    disk = _disk(vm.config)
    _ok(_set_cbt(vm, True))
    id1 = _change_id(si, _snapshot(vm, "b1"))
    _ok(vm.RemoveAllSnapshots_Task())
    disk.capacityInKB += 1024
    edit = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
    _ok(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[edit])))
    s2 = _snapshot(vm, "b2")
    with pytest.raises(vim.fault.FileFault):
        vm.QueryChangedDiskAreas(snapshot=s2, deviceKey=disk.key, startOffset=0, changeId=id1)
    id2 = _change_id(si, s2)
    _ok(vm.RemoveAllSnapshots_Task())
    _ok(_set_cbt(vm, False))
    with pytest.raises(vim.fault.FileFault):
        vm.QueryChangedDiskAreas(deviceKey=disk.key, startOffset=0, changeId=id2)


def test_current_state_query_needs_a_powered_off_vm(si: Any) -> None:
    vm = _new_vm(si)
    key = _disk(vm.config).key
    _ok(_set_cbt(vm, True))
    _ok(vm.PowerOnVM_Task())
    _snapshot(vm, "b1")
    with pytest.raises(vim.fault.InvalidPowerState):
        vm.QueryChangedDiskAreas(deviceKey=key, startOffset=0, changeId="*")


def test_free_license_refuses_query() -> None:
    # The refusal comes before the VM is looked up, so any VirtualMachine reference will do.
    with SimulatorHost.start(free_license=True) as free:
        vm = vim.VirtualMachine("vm-1", free.connect()._stub)
        with pytest.raises(vim.fault.RestrictedVersion):
            vm.QueryChangedDiskAreas(deviceKey=2000, startOffset=0, changeId="*")
