"""`ceso template import` on the API route, end to end: a real worker, SQL, Redis and the simulator,
whose NFC uploads are kept as ESXi keeps them (ops/simulator/main.go). The OVAs are built here
with qemu-img; what the import made is read back from the datastore directory and pyVmomi."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ceso.cloudinit import decode_guestinfo
from tests.conftest import Cli, unique
from tests.support.images import MIB, https_server, make_ova, make_raw, ovf_descriptor
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, devices_of, extra_config, vm_by_name, vm_names


def _import(cli: Cli, name: str, host: str, source: Path | str, *extra: str) -> Any:
    return cli(
        "--json",
        "template",
        "import",
        name,
        "--host",
        host,
        "--from",
        str(source),
        "--timeout",
        "120",
        *extra,
    )


def test_an_ova_imports_as_a_thin_template_that_vm_create_uses(
    cli: Cli, sim: SimulatorHost, registered_host: str, start_worker: Any, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    raw = make_raw(tmp_path / "r", 4 * MIB)
    ova = make_ova(images, "noble", [raw])
    name, web = unique("noble"), unique("web")
    si = sim.connect()
    with https_server(images) as (base, ca):
        # The worker trusts the server's certificate as it would a public CA's (SSL_CERT_FILE).
        start_worker(registered_host, env={"SSL_CERT_FILE": str(ca)})
        signed = _import(cli, name, registered_host, f"{base}/noble.ova?X-Signature=s3cr3t")
        assert signed.exit_code == 2 and "no query" in signed.stdout  # it would be stored with the job
        url = f"{base}/noble.ova"
        result = _import(
            cli, name, registered_host, url, "--sha256", hashlib.sha256(ova.read_bytes()).hexdigest()
        )
    try:
        assert result.exit_code == 0, result.stdout + result.stderr
        job = result.json()
        assert job["state"] == "succeeded", job
        assert job["result"]["source"] == url
        assert job["result"]["template"]["status"] == "passed"
        vm = vm_by_name(si, name)
        (disk,) = devices_of(vm, "VirtualDisk")
        assert disk.backing.thinProvisioned and disk.capacityInKB * 1024 == len(raw)
        assert (vm.config.guestId, vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (
            "ubuntu64Guest",
            2,
            1024,
        )
        assert [type(n).__name__ for n in devices_of(vm, "VirtualEthernetCard")] == [
            "vim.vm.device.VirtualVmxnet3"
        ]
        # The disk on the datastore: a VMFS descriptor and a sparse flat file holding the image's bytes.
        folder = sim.datastore_dir() / name
        path = disk.backing.fileName.split("] ", 1)[1]
        descriptor = (sim.datastore_dir() / path).read_text()
        assert 'createType="vmfs"' in descriptor and "-flat.vmdk" in descriptor
        flat = sim.datastore_dir() / path.replace(".vmdk", "-flat.vmdk")
        assert flat.read_bytes() == raw and flat.stat().st_blocks * 512 < len(raw) // 4
        assert flat.parent == folder
        steps = [s["name"] for s in job["steps"]]
        assert steps[-4:] == ["upload disk 1/1", "complete import", "record image tools", "register template"]
        # A VM never booted reports no VMware Tools; the image's disk declares them (qemu-img writes
        # ddb.toolsVersion = "2147483647": guest-managed, as Ubuntu's cloud image is).
        (tools,) = [c for c in job["result"]["template"]["checks"] if c["check"] == "vmware_tools_installed"]
        assert tools["result"] == "passed" and "guest-managed" in tools["detail"]

        validated = cli("--json", "template", "validate", name)
        assert validated.exit_code == 0 and validated.json()["status"] == "passed", validated.stdout

        created = cli("--json", "vm", "create", web, "--template", name, "--ip", "192.0.2.10/24",
                      "--gateway", "192.0.2.1", "--timeout", "120")  # fmt: skip
        assert created.exit_code == 0, created.stdout + created.stderr
        new = vm_by_name(si, web)
        assert (sim.datastore_dir() / web / f"{web}-flat.vmdk").read_bytes() == raw
        meta = yaml.safe_load(decode_guestinfo(extra_config(new))["metadata"])
        assert meta["network"]["ethernets"]["nic0"]["addresses"] == ["192.0.2.10/24"]
    finally:
        for vm in (web, name):
            if vm in vm_names(si):
                destroy_vm(si, vm)


def test_a_failed_import_leaves_nothing_and_a_refused_one_makes_nothing(
    cli: Cli, sim: SimulatorHost, registered_host: str, start_worker: Any, tmp_path: Path
) -> None:
    start_worker(registered_host)
    si = sim.connect()
    raw = make_raw(tmp_path / "r", 2 * MIB)
    # The disk differs from the manifest: found only once it is uploaded, so the VM is made first.
    bad = make_ova(tmp_path, "bad", [raw], corrupt="bad-disk0.vmdk")
    name = unique("bad")
    failed = _import(cli, name, registered_host, bad)
    assert failed.exit_code == 2, failed.stdout + failed.stderr
    job = cli("--json", "job", "list").json()[0]
    steps = {s["name"]: s for s in job["steps"]}
    assert {"import VM", "abort import", "clean up after failure"} <= set(steps), list(steps)
    assert name not in vm_names(si) and not (sim.datastore_dir() / name).exists()
    assert name not in {t["name"] for t in cli("--json", "template", "list").json()}

    # Two VMs in one package: refused from the descriptor, before any host call that writes.
    two = ovf_descriptor("two", [("two-disk0.vmdk", 1, MIB)]).replace(
        "</VirtualSystem>", '</VirtualSystem><VirtualSystem ovf:id="b"><Info/></VirtualSystem>'
    )
    two_name = unique("two")
    refused = _import(cli, two_name, registered_host, make_ova(tmp_path, "two", [raw], descriptor=two))
    assert refused.exit_code == 2 and "2 virtual machines" in refused.stderr + refused.stdout
    job = cli("--json", "job", "list").json()[0]
    assert [s["name"] for s in job["steps"]] == ["read package"]
    assert two_name not in vm_names(si) and not (sim.datastore_dir() / two_name).exists()


class _Killed(BaseException):
    """The worker's death: raised past the handler's cleanup, which is switched off (no undo runs)."""


def test_an_import_killed_at_register_template_keeps_record_and_host_together(
    cli: Cli,
    sim: SimulatorHost,
    registered_host: str,
    start_worker: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attempt 1 runs in this process and dies in "register template" (its start committed, no
    cleanup, the claim left to go stale), once after the template's row was written and once before.
    A real worker's next attempt adopts the marked VM: no second upload, one row, validated. A job
    out of attempts after such a death removes the VM, its folder and the row."""
    from ceso.errors import CesoError
    from ceso.jobs.context import JobContext
    from ceso.jobs.leftovers import fail_exhausted
    from ceso.jobs.store import claim_job
    from ceso.operations import template_import
    from ceso.runtime import get_runtime
    from ceso.security.worker import ClaimCheck
    from tests.conftest import _clear_caches

    monkeypatch.setenv("CESO_JOBS__HEARTBEAT_S", "60")  # the dead attempt never beats
    monkeypatch.setenv("CESO_LOCKS__TTL_S", "2")  # and its locks lapse soon
    _clear_caches()
    runtime = get_runtime()
    si = sim.connect()
    ova = make_ova(tmp_path, "img", [make_raw(tmp_path / "r", 2 * MIB)])
    real_add = template_import.add_template

    def killed(name: str, *, row_written: bool) -> str:
        submitted = _import(cli, name, registered_host, ova, "--no-wait")
        assert submitted.exit_code == 0, submitted.stdout + submitted.stderr
        job_id = str(submitted.json()["id"])
        job = claim_job(
            runtime.engine, job_id=job_id, worker="dead:1", stale_after_s=60, audit=ClaimCheck(runtime)
        )
        assert job is not None

        def dies(rt: Any, vm: str, host: str) -> Any:
            if row_written:
                real_add(rt, vm, host)
            raise _Killed

        with monkeypatch.context() as m:
            m.setattr(template_import, "add_template", dies)
            m.setattr(template_import, "undo", lambda *a, **k: None)
            with pytest.raises(_Killed):
                template_import.run_template_import(JobContext(runtime, job))
        assert name in vm_names(si)
        return job_id

    def rows() -> list[str]:
        return [t["name"] for t in cli("--json", "template", "list").json()]

    adopted = {unique("after-row"): True, unique("before-row"): False}
    uuids = {}
    for name, row_written in adopted.items():
        uuids[name] = (killed(name, row_written=row_written), vm_by_name(si, name).config.uuid)
        assert (name in rows()) is row_written

    # Out of attempts after the same death: both the VM and the row go.
    gone = unique("exhausted")
    gone_id = killed(gone, row_written=True)
    job = claim_job(
        runtime.engine, job_id=gone_id, worker="last:1", stale_after_s=0, audit=ClaimCheck(runtime)
    )
    assert job is not None
    fail_exhausted(runtime, job, CesoError("out of attempts", code="attempts_exhausted"), claimed_at=0.0)
    assert gone not in vm_names(si) and not (sim.datastore_dir() / gone).exists()
    assert gone not in rows()

    start_worker(registered_host, env={"CESO_JOBS__STALE_AFTER_S": "2", "CESO_LOCKS__TTL_S": "2"})
    try:
        for name, (job_id, uuid) in uuids.items():
            done = cli("--json", "job", "wait", job_id, "--timeout", "120").json()
            assert done["state"] == "succeeded" and done["attempts"] == 2, done
            names = [s["name"] for s in done["steps"]]
            second = done["steps"][len(names) - names[::-1].index("read package") - 1 :]  # attempt 2's
            check = next(s for s in second if s["name"] == "check name")
            assert check.get("adopted") == name, second
            assert not any(s["name"].startswith("upload disk") for s in second), second
            assert done["result"]["template"]["status"] == "passed"
            assert vm_by_name(si, name).config.uuid == uuid  # the same VM, not a second import
            assert rows().count(name) == 1
    finally:
        for name in adopted:
            if name in vm_names(si):
                destroy_vm(si, name)
