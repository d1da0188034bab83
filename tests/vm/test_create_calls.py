"""What a create job asks of the host: SOAP calls per warm create, the per-session layout and its refreshes.

The jobs run in this process (``run_job``) on the runtime's pooled session, as
in a worker child, so the session's ``stats`` count exactly the job's calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from ceso.esxi.client import EsxiClient
from tests.conftest import Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, devices_of, make_template, vim, vm_by_name, vm_names
from tests.vm.lifecycle.conftest import add_portgroup

#: SOAP calls of a create on a warm session: the four writes, one read of each task's state,
#: finding the template and reading it, the name check under the lock and the MACs in use.
WARM_CREATE_CALLS = {
    "RetrievePropertiesEx": 7,
    "MakeDirectory": 1,
    "CopyVirtualDisk_Task": 1,
    "CreateVM_Task": 1,
    "PowerOnVM_Task": 1,
}


@dataclass
class Bed:
    host: str
    template: str
    si: Any
    runtime: Any

    @property
    def client(self) -> EsxiClient:
        from ceso.hosts.registry import client_for

        return client_for(self.runtime, self.host)

    def create(self, name: str, **hardware: Any) -> dict[str, Any]:
        """Submit a ``vm.create`` and run it here; return the job as ``job status`` shows it."""
        from sqlmodel import Session

        from ceso.jobs.runner import run_job
        from ceso.jobs.store import get_job, job_to_dict
        from ceso.jobs.submit import submit_job
        from ceso.vm.requests import create_request
        from ceso.vm.specs import CreateVm

        spec = CreateVm.parse(
            {"name": name, "template": self.template, "host": self.host, "ip": "192.0.2.10/24",
             "gateway": "192.0.2.1", **hardware}
        )  # fmt: skip
        request, _ = create_request(self.runtime, spec, idempotency_key=None, check_host=False)
        job, _ = submit_job(self.runtime, request)
        run_job(self.runtime, job.id)
        with Session(self.runtime.engine) as session:
            return job_to_dict(get_job(session, job.id))


@pytest.fixture
def bed(cli: Cli, sim: SimulatorHost, registered_host: str) -> Iterator[Bed]:
    from ceso.runtime import get_runtime

    si = sim.connect()
    template = unique("tmpl")
    make_template(si, sim.datastore_dir(), template, os.urandom(4096))
    before = set(vm_names(si))
    added = cli("template", "add", template, "--host", registered_host)
    assert added.exit_code == 0, added.stderr
    yield Bed(registered_host, template, si, get_runtime())
    for vm in set(vm_names(si)) - before:
        destroy_vm(si, vm)
    destroy_vm(si, template)


def test_a_warm_create_makes_eleven_soap_calls(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bed.create(unique("warm"))["state"] == "succeeded"  # the session and its layout are warm now
    specs: list[Any] = []
    collect = EsxiClient._collect

    def spy(self: EsxiClient, spec: Any) -> Any:
        specs.append(spec)
        return collect(self, spec)

    monkeypatch.setattr(EsxiClient, "_collect", spy)
    stats, reads = bed.client.stats, bed.client.layout_cache.reads
    stats.calls.clear()
    job = bed.create(unique("warm"))
    assert job["state"] == "succeeded", job["error"]
    assert dict(stats.calls) == WARM_CREATE_CALLS
    # No read through pyVmomi's deserializer asks for the device lists of more than one VM: the
    # MACs in use are read as XML (ceso.esxi.vmscan), and so are the template's (ceso.esxi.source).
    for spec in specs:
        paths = {p for ps in spec.propSet for p in ps.pathSet}
        if "config.hardware.device" in paths:
            (one,) = spec.objectSet
            assert isinstance(one.obj, vim.VirtualMachine) and not one.selectSet, spec
    assert bed.client.layout_cache.reads == reads  # the session's layout served the job


def test_a_network_added_after_the_layout_was_read_is_found(bed: Bed) -> None:
    assert bed.create(unique("first"))["state"] == "succeeded"
    cache = bed.client.layout_cache
    reads = cache.reads
    portgroup = unique("pg")
    add_portgroup(bed.si, portgroup)
    name = unique("onpg")
    job = bed.create(name, network=portgroup)
    assert job["state"] == "succeeded", job["error"]
    (nic,) = devices_of(vm_by_name(bed.si, name), "VirtualEthernetCard")
    assert nic.backing.deviceName == portgroup
    assert cache.reads == reads + 1  # read again once, for the network it lacked
    assert bed.create(unique("again"), network=portgroup)["state"] == "succeeded"
    assert cache.reads == reads + 1
    # A network the host really lacks is still refused, before anything is made.
    missing = unique("nopg")
    job = bed.create(missing, network="no-such-portgroup")
    assert job["state"] == "failed" and job["error"]["code"] == "not_found", job["error"]
    assert "no-such-portgroup" in job["error"]["message"] and portgroup in job["error"]["message"]
    assert vm_by_name(bed.si, missing) is None


def test_the_layout_is_read_again_after_a_relogin_or_when_an_object_is_gone(bed: Bed) -> None:
    from ceso.esxi.layout import _Entry

    assert bed.create(unique("first"))["state"] == "succeeded"
    client = bed.client
    cache = client.layout_cache
    reads = cache.reads
    client.connect()  # a new session: the host may have restarted since the layout was read
    assert bed.create(unique("relogin"))["state"] == "succeeded"
    assert cache.reads == reads + 1
    # The host answers ManagedObjectNotFound for a cached VM folder: read again, create once more.
    layout = cache.get()
    gone = vim.Folder("group-gone", client.content.rootFolder._stub)
    cache._entry = _Entry(replace(layout, vm_folder=gone), client.logins, time.monotonic())
    name = unique("gone")
    job = bed.create(name)
    assert job["state"] == "succeeded", job["error"]
    assert vm_by_name(bed.si, name) is not None
    assert cache.reads == reads + 2
    assert cache.get().vm_folder._moId == layout.vm_folder._moId
