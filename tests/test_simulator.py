"""The simulated ESXi test bed itself (ops/simulator + tests/support/simulator.py).

No skips: a missing Go toolchain or govmomi source must fail these tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyVim.task
import pyVmomi

from tests.support.simulator import SimulatorHost, build_simulator, start_hosts

_pyvmomi: Any = pyVmomi
vim: Any = _pyvmomi.vim
vmodl: Any = _pyvmomi.vmodl
WaitForTask: Any = pyVim.task.WaitForTask

RESTRICTED_MSG = "Current license or ESXi version prohibits execution of the requested operation."


@pytest.fixture(scope="module")
def plain() -> Iterator[SimulatorHost]:
    with SimulatorHost.start() as host:
        yield host


@pytest.fixture(scope="module")
def free() -> Iterator[SimulatorHost]:
    with SimulatorHost.start(free_license=True) as host:
        yield host


def _vms(si: Any) -> list[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def _vm_spec(name: str) -> Any:
    return vim.vm.ConfigSpec(
        name=name,
        guestId="otherGuest",
        memoryMB=64,
        numCPUs=1,
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
    )


def _create_vm(si: Any, name: str) -> Any:
    """Call CreateVM_Task on the only datacenter/host; returns the task (raises on a fault)."""
    dc = si.RetrieveContent().rootFolder.childEntity[0]
    pool = dc.hostFolder.childEntity[0].resourcePool
    return dc.vmFolder.CreateVM_Task(config=_vm_spec(name), pool=pool)


def test_build_simulator_gives_an_executable() -> None:
    path = build_simulator()
    assert path.is_file()
    assert path.name.startswith("vcsim-")


def test_plain_host_is_empty_with_a_real_datastore(plain: SimulatorHost) -> None:
    assert plain.url == f"http://127.0.0.1:{plain.port}/sdk"
    si = plain.connect()
    assert si.RetrieveContent().about.apiType == "HostAgent"
    assert _vms(si) == []
    ds = plain.datastore_dir()
    assert ds.is_dir()
    assert ds.is_relative_to(plain.tmpdir)


def test_create_vm_appears(plain: SimulatorHost) -> None:
    si = plain.connect()
    assert WaitForTask(_create_vm(si, "created-1"), si=si) == "success"
    assert [vm.name for vm in _vms(si)] == ["created-1"]
    assert (plain.datastore_dir() / "created-1").is_dir()


def test_clone_is_not_supported(plain: SimulatorHost) -> None:
    si = plain.connect()
    if not _vms(si):
        WaitForTask(_create_vm(si, "clone-src"), si=si)
    vm = _vms(si)[0]
    before = len(_vms(si))
    with pytest.raises(vmodl.fault.NotSupported):
        vm.CloneVM_Task(
            folder=vm.parent, name="clone-dst", spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec())
        )
    assert len(_vms(si)) == before


def test_anonymous_write_gets_not_authenticated(plain: SimulatorHost) -> None:
    # Canned faults apply only to calls with a session cookie, as ESXi checks the session first.
    with pytest.raises(vim.fault.NotAuthenticated):
        _create_vm(plain.service_instance(), "anonymous")


def test_free_license_reports_free_edition(free: SimulatorHost) -> None:
    licenses = free.connect().RetrieveContent().licenseManager.licenses
    assert [(lic.editionKey, lic.name) for lic in licenses] == [
        ("esx.hypervisor.cpuPackageCoreLimited", "vSphere 7 Hypervisor")
    ]


def test_free_license_refuses_writes_but_reads_work(free: SimulatorHost) -> None:
    si = free.connect()
    with pytest.raises(vim.fault.RestrictedVersion) as err:
        _create_vm(si, "refused")
    assert err.value.msg == RESTRICTED_MSG
    # Refused at the call: no VM, no VM directory, no task.
    assert _vms(si) == []
    assert not (free.datastore_dir() / "refused").exists()
    content = si.RetrieveContent()
    assert list(content.taskManager.recentTask) == []
    # Reads keep working, by attribute access and through the property collector.
    host = content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    assert host.summary.config.name
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=host.datastore[0])],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Datastore, pathSet=["name"])],
    )
    result = content.propertyCollector.RetrieveContents([spec])
    assert result[0].propSet[0].val == "LocalDS_0"
    with pytest.raises(vim.fault.RestrictedVersion):
        content.fileManager.MakeDirectory(name="[LocalDS_0] newdir")
    assert not (free.datastore_dir() / "newdir").exists()


def test_tls_serves_https() -> None:
    with SimulatorHost.start(tls=True) as host:
        assert host.url.startswith("https://127.0.0.1:")
        assert host.service_instance().RetrieveContent().about.apiType == "HostAgent"
        assert host.connect().RetrieveContent().about.name


def test_fail_methods_and_delay() -> None:
    args = ("-fail-methods", "PowerOnVM_Task", "-delay", "CurrentTime=300")
    with SimulatorHost.start(extra_args=args) as host:
        si = host.connect()
        WaitForTask(_create_vm(si, "vm"), si=si)
        with pytest.raises(vmodl.fault.SystemError):
            _vms(si)[0].PowerOnVM_Task()
        t0 = time.monotonic()
        si.CurrentTime()
        assert time.monotonic() - t0 >= 0.3


def test_stop_removes_tmpdir_and_process() -> None:
    hosts = start_hosts(2)
    assert len({h.port for h in hosts}) == 2
    dirs: list[Path] = [h.datastore_dir() for h in hosts]
    for h, ds in zip(hosts, dirs, strict=True):
        assert ds.is_dir()
        h.stop()
        assert not h.running()
        assert h.proc.returncode == 0  # clean SIGTERM shutdown
        assert not h.tmpdir.exists()
        h.stop()  # idempotent
