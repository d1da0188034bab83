"""Jobs on the SSH route against what real hosts do (see test_real_host_quirks.py for the backend alone).

Real worker, Redis, SQL, sshd and emulators; what the job reports is checked against the
simulator's API and the datastore directory.
"""

from __future__ import annotations

import os
from typing import Any

from tests.conftest import Cli, unique
from tests.ssh.conftest import SshBed
from tests.support.vms import vm_by_name


def _job(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("--json", *args, "--timeout", "180")
    job: dict[str, Any] = result.json()
    if "state" not in job:  # a failed job is printed as an error object; read the job itself
        listed = cli("--json", "job", "list").json()[0]
        job = cli("--json", "job", "status", listed["id"]).json()
    return job


def test_a_power_on_the_host_says_failed_fails_the_job(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    # Older hosts: "Power on failed" with a reason, and exit status 0; the VM stays off.
    said = "Powering on VM:\nPower on failed: Insufficient memory resources.\n"
    bed.shell.configure(
        faults={"vim-cmd vmsvc/power.on": {"exit": 0, "stdout": said}},
        no_message_exit_status=0,  # this test is about power-on alone
    )
    name = unique("nopower")
    job = _job(cli, "vm", "create", name, "--template", bed.template)
    assert job["state"] == "failed", job
    assert job["error"]["code"] == "power_on_failed"
    assert "poweredOff" in job["error"]["message"] and "Insufficient memory" in job["error"]["message"]
    assert vm_by_name(bed.sim.connect(), name) is None  # cleaned up like any failed create
    assert not (bed.datastore_dir / name).exists()


def test_the_result_reports_the_power_state_read_back(cli: Cli, ssh_bed: SshBed) -> None:
    name = unique("on")
    job = _job(cli, "vm", "create", name, "--template", ssh_bed.template)
    assert job["state"] == "succeeded", job
    assert vm_by_name(ssh_bed.sim.connect(), name).runtime.powerState == "poweredOn"
    assert job["result"]["power_state"] == "poweredOn"
    steps = {s["name"]: s for s in job["steps"]}
    assert steps["power on"]["power_state"] == "poweredOn"
    # "No message." with a non-zero exit (the emulator's default) was read on the way, not a failure.
    messages = [i for i in ssh_bed.shell.invocations() if i["argv"][:1] == ["vmsvc/message"]]
    assert messages


def test_create_from_an_efi_template_keeps_its_nvram_and_secure_boot(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    folder = bed.datastore_dir / bed.template
    vmx = (folder / f"{bed.template}.vmx").read_text()
    # The template boots with EFI and Secure Boot; its NVRAM holds the boot entries.
    (folder / f"{bed.template}.vmx").write_text(vmx + 'firmware = "efi"\nuefi.secureBoot.enabled = "TRUE"\n')
    nvram = b"NVRAM\0" + os.urandom(8192)
    (folder / f"{bed.template}.nvram").write_bytes(nvram)
    name = unique("efi")
    job = _job(cli, "vm", "create", name, "--template", bed.template, "--no-power-on")
    assert job["state"] == "succeeded", job.get("error")
    assert (bed.datastore_dir / name / f"{name}.nvram").read_bytes() == nvram
    written = (bed.datastore_dir / name / f"{name}.vmx").read_text()
    assert 'firmware = "efi"' in written and 'uefi.secureBoot.enabled = "TRUE"' in written
    assert f'nvram = "{name}.nvram"' in written
    vm = vm_by_name(bed.sim.connect(), name)
    assert vm.config.firmware == "efi"  # (the simulator keeps no Secure Boot flag: the .vmx shows it)
    steps = {s["name"]: s for s in job["steps"]}
    assert steps["copy NVRAM"]["source"] == f"[LocalDS_0] {bed.template}/{bed.template}.nvram"
