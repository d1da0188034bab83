"""Failures on the SSH route: each is a clear error, leaves nothing half-made and runs nothing unmeant.

A failed create must leave no directory and no registered VM; a refused
login or a wrong host key must stop the job before any command runs on the
host (checked against the emulators' own log).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlmodel import select

from ceso.db.engine import session_scope
from ceso.db.models import Host
from ceso.runtime import get_runtime
from tests.conftest import Cli, closed_port, unique
from tests.ssh.conftest import TASK_TIMEOUT_S, SshBed
from tests.support.vms import vm_by_name


def _failed(cli: Cli, bed: SshBed, name: str) -> dict[str, Any]:
    result = cli(
        "--json", "vm", "create", name, "--template", bed.template, "--no-power-on", "--timeout", "180"
    )
    assert result.exit_code != 0, result.stdout
    job: dict[str, Any] = cli("--json", "job", "list").json()[0]
    full: dict[str, Any] = cli("--json", "job", "status", job["id"]).json()
    assert full["state"] == "failed", full
    return full


def _nothing_left(bed: SshBed, name: str) -> None:
    assert vm_by_name(bed.sim.connect(), name) is None
    assert not (bed.datastore_dir / name).exists()


def _set_host(host: str, **values: Any) -> None:
    with session_scope(get_runtime().engine) as session:
        row = session.exec(select(Host).where(Host.name == host)).one()
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)


def test_a_failing_disk_copy_or_registration_is_cleaned_up(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    bed.shell.configure(
        faults={
            "vmkfstools -i": {"exit": 1, "stdout": "Failed to clone disk: No space left on device (1).\n"}
        }
    )
    name = unique("nospace")
    job = _failed(cli, bed, name)
    assert job["error"]["code"] == "ssh_command_failed"
    assert "vmkfstools -i" in job["error"]["message"] and "No space left" in job["error"]["message"]
    steps = {s["name"]: s for s in job["steps"]}
    assert (
        steps["copy disk 1/1"]["state"] == "failed"
        and steps["clean up after failure"]["state"] == "succeeded"
    )
    assert steps["clean up after failure"]["route"] == "ssh"
    _nothing_left(bed, name)

    bed.shell.configure(
        faults={
            "vim-cmd solo/registervm": {
                "exit": 1,
                "stdout": '(vim.fault.InvalidState) {\n   msg = "busy"\n}\n',
            }
        }
    )
    name = unique("noreg")
    job = _failed(cli, bed, name)
    assert job["error"]["code"] == "conflict"  # InvalidState, as the API route would raise it
    _nothing_left(bed, name)


def test_a_hung_command_fails_the_job_and_is_killed(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    bed.shell.configure(hang={"vmkfstools -i": 300})
    name = unique("hang")
    start = time.monotonic()
    job = _failed(cli, bed, name)
    assert job["error"]["code"] == "timeout" and "vmkfstools -i" in job["error"]["message"]
    assert time.monotonic() - start < TASK_TIMEOUT_S + 60
    pid = next(i["pid"] for i in reversed(bed.shell.invocations()) if i["tool"] == "vmkfstools")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"the hung vmkfstools (pid {pid}) still runs")
    _nothing_left(bed, name)


def test_wrong_host_key_or_ssh_down_runs_nothing(cli: Cli, ssh_bed: SshBed) -> None:
    bed = ssh_bed
    before = len(bed.shell.invocations())
    _set_host(bed.host, ssh_host_key="SHA256:" + "C" * 43)
    name = unique("mitm")
    job = _failed(cli, bed, name)
    assert job["error"]["code"] == "ssh_host_key_mismatch"
    assert "not the pinned" in job["error"]["message"]
    assert len(bed.shell.invocations()) == before  # not one command, not one file transfer
    _nothing_left(bed, name)

    _set_host(bed.host, ssh_host_key=bed.shell.host_key_fingerprint(), ssh_port=closed_port())
    name = unique("down")
    job = _failed(cli, bed, name)
    assert job["error"]["code"] == "host_unreachable"
    assert len(bed.shell.invocations()) == before
    _nothing_left(bed, name)


def test_a_read_only_host_without_ssh_is_refused_clearly(
    cli: Cli, ssh_bed: SshBed, start_worker: Any
) -> None:
    added = cli("--json", "host", "add", unique("nossh"), "--url", ssh_bed.sim.url, "--user", "root",
                "--password-stdin", input="pw\n")  # fmt: skip
    assert added.exit_code == 0, added.stdout + added.stderr
    host = added.json()["name"]
    assert added.json()["capabilities"]["api_writes"] is False
    tmpl = cli("--json", "template", "add", ssh_bed.template, "--host", host)
    assert tmpl.exit_code == 0, tmpl.stdout
    start_worker(host, concurrency=1)
    result = cli("--json", "vm", "create", unique("x"), "--template", ssh_bed.template, "--host", host,
                 "--no-power-on", "--timeout", "120")  # fmt: skip
    assert result.exit_code == 3, result.stdout  # not permitted: the API is read-only
    job = result.json()
    assert job["error"]["code"] == "api_read_only" and "--ssh-user" in job["error"]["message"]
