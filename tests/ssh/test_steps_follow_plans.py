"""Every job kind records the steps its plan declares, on the API route, the SSH route and the fake.

A dry run shows :func:`ceso.plans.plan_for`; the worker runs the same :class:`ceso.plans.Step`
objects. This holds what jobs really recorded to the declaration: each recorded step is a
declared step of its kind, in the declared order (cleanup steps may come anywhere), marked
``cleanup`` exactly when declared so, and every call that changes the host is named by the
step's text for the route the job took (vSphere methods as recorded; on the SSH route the
shell command's tool and sub-command, or the SFTP operation). Reads are not held to the text.

The jobs run in this process (``run_job``, no Celery worker): the CLI submits them (the
request builders, as a user's), the runner runs them against the simulator (API), the ESXi
shell emulator behind a real sshd (SSH) or the in-memory FakeBackend.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from ceso.backends.fake import FakeBackend
from ceso.cesod.methods import METHODS
from ceso.db.models import Job, Template
from ceso.jobs.request import JobRequest
from ceso.jobs.runner import run_job
from ceso.jobs.store import get_job
from ceso.jobs.submit import submit_job
from ceso.plans import API, PLANS, SSH, BackupSteps, BlankVmSteps, Step, plan_of, steps_of
from ceso.runtime import Runtime, get_runtime
from tests.conftest import FAKE_HOST as HOST
from tests.conftest import Cli, unique
from tests.ssh.conftest import make_ssh_template, register_ssh_host
from tests.support.images import MIB, make_ova, make_raw
from tests.support.simulator import SimulatorHost
from tests.support.sshd import SshServer
from tests.support.vms import destroy_vm, make_template, vm_names

#: Shell commands and SFTP operations that only read: not held to the step's text.
SHELL_READS = (
    "vim-cmd vmsvc/getallvms",
    "vim-cmd vmsvc/power.getstate",
    "vim-cmd vmsvc/get.guest",
    "vim-cmd vmsvc/snapshot.get",
    "vim-cmd vimsvc/task_list",
    "vim-cmd vimsvc/task_info",
    "esxcli storage",
    "esxcli network",
    "sh -c",
    "cat ",
    "sftp.read",
    "sftp.stat",
)


def _call_name(call: Any) -> str:
    """A recorded call as a plan names it: the vSphere method, ``tool sub-command``, or ``sftp.op``."""
    if isinstance(call, str):
        return call  # host.ping lists its calls by name
    if call["method"] == "ssh":
        return " ".join(shlex.split(call["args"]["command"])[:2])
    return str(call["method"])


def departures(job: Job | dict[str, Any], route: str) -> list[str]:
    """How the steps ``job`` recorded depart from its kind's plan on ``route`` (``api``, ``ssh`` or
    ``fake``, whose calls are the protocol's methods and are not checked); empty if none. A job
    with ``params`` that succeeded must also have run every step its dry run shows without a
    condition (``when``)."""
    row = job if isinstance(job, dict) else {"kind": job.kind, "steps": job.steps, "params": job.params}
    declared = steps_of(plan_of(row["kind"], _spec(row)))
    promised = [s for s in _promised(row) if route == "fake" or route in s.routes]
    found = [f"{s.name!r} is in the plan but did not run" for s in promised if not s.ran_in(row["steps"])]
    at = 0
    for record in row["steps"] or []:
        name = str(record["name"])
        matches = [i for i, step in enumerate(declared) if step.matches(name)]
        if not matches:
            found.append(f"{name!r} is not a step of {row['kind']}")
            continue
        later = [i for i in matches if i >= at]
        step: Step = declared[(later or matches)[0]]
        if not step.cleanup:
            if not later:
                found.append(f"{name!r} ran after a step its plan puts after it")
            at = max(at, (later or matches)[0])
        if bool(record.get("cleanup")) != step.cleanup:
            found.append(
                f"{name!r} is recorded with cleanup={record.get('cleanup')}, declared {step.cleanup}"
            )
        if route not in (API, SSH):
            continue
        for call in record.get("calls", []):
            called = _call_name(call)
            if route == SSH and called.startswith(SHELL_READS):
                continue
            if called not in step.calls(route):
                found.append(
                    f"{name!r} called {called} on the {route} route; its plan says: {step.calls(route)}"
                )
    return found


def _spec(row: dict[str, Any]) -> Any:
    """The spec of the job's params (None for a job without params or a kind with no spec)."""
    method = METHODS.get(row["kind"])
    if row.get("params") is None or method is None or method.spec is None:
        return None
    return method.spec.from_job(row["params"])


def _promised(row: dict[str, Any]) -> list[Step]:
    """The steps a dry run of the job's spec shows as always run (none for a job without params or
    one that did not succeed)."""
    spec = _spec(row)
    if row.get("state", "succeeded") != "succeeded" or spec is None:
        return []
    steps = steps_of(plan_of(row["kind"], spec))
    return [s for s in steps if not (s.when or s.cleanup) and (s.only is None or s.only(spec))]  # any route


def _kinds(jobs: list[dict[str, Any]]) -> set[str]:
    return {j["kind"] for j in jobs}


# -- the real routes: the CLI submits, this process runs ------------------------------------------
def _runner(cli: Cli) -> Callable[..., dict[str, Any]]:
    runtime = get_runtime()

    def run(*args: str, ok: bool = True) -> dict[str, Any]:
        queued = cli(*args, "--no-wait")
        assert queued.exit_code == 0, (args, queued.stdout, queued.stderr)
        job_id = queued.stdout.strip()
        run_job(runtime, job_id)
        with Session(runtime.engine) as session:
            job = get_job(session, job_id)
        assert (job.state == "succeeded") == ok, (args, job.state, job.error_message, job.steps)
        return {
            "kind": job.kind,
            "steps": job.steps,
            "result": job.result,
            "params": job.params,
            "state": job.state,
        }

    return run


def _lifecycle(run: Callable[..., dict[str, Any]], template: str, *, route: str) -> list[dict[str, Any]]:
    """Every VM kind once or more: create, power, reconfigure, snapshots, clone (hot), delete."""
    name, copy = unique("plan"), unique("plan-copy")
    jobs = [run("vm", "create", name, "--template", template, "--disk", "17G")]
    jobs.append(run("vm", "power", "off", name))
    change = ("--cpus", "1") if route == API else ("--disk-grow", "1", "18G")
    jobs.append(run("vm", "reconfigure", name, *change))
    jobs += [run("vm", "power", action, name) for action in ("on", "reset")]
    jobs.append(run("vm", "power", "shutdown", name, "--force", "--timeout-guest", "1"))
    jobs.append(run("vm", "power", "on", name))
    jobs.append(run("vm", "snapshot", "create", name, "s1"))
    jobs.append(run("vm", "snapshot", "revert", name, "s1"))
    jobs.append(run("vm", "snapshot", "delete", name, "s1"))
    jobs.append(run("vm", "clone", name, copy, "--hot", "--no-power-on"))
    jobs.append(run("vm", "delete", copy, "--yes"))
    jobs.append(run("vm", "delete", name, "--yes", "--force"))
    return jobs


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # steps, not SQL: one is enough
def _other_kinds(
    run: Callable[..., dict[str, Any]], host: str, source: str, tmp_path: Path
) -> list[dict[str, Any]]:
    """A template import (a small OVA from the worker's disk), a backup of ``source`` to a local
    target, an incremental on it (a full over SSH, which has no change tracking) and the
    incremental's restore as a new VM."""
    raw = make_raw(tmp_path / "disk.raw", 2 * MIB)
    ova = make_ova(tmp_path, "plans", [raw])
    jobs = [run("template", "import", unique("imported"), "--host", host, "--from", str(ova))]
    backup = run("backup", "create", source, "--target", "plans")
    incremental = run("backup", "create", source, "--target", "plans", "--incremental")
    restored = run("backup", "restore", incremental["result"]["backup_id"], "--as", unique("restored"))
    # The source's disk holds no boot sector: the drill restores it, sees no heartbeat, removes it.
    drill = run("backup", "drill", "--vm", source, "--boot-timeout", "1", ok=False)
    return [*jobs, backup, incremental, restored, drill]


def test_every_kind_follows_its_plan_on_the_api_route(
    cli: Cli, sim: SimulatorHost, registered_host: str, tmp_path: Path
) -> None:
    si = sim.connect()
    before = set(vm_names(si))
    template = unique("tmpl")
    make_template(si, sim.datastore_dir(), template, os.urandom(4096))
    assert cli("template", "add", template, "--host", registered_host).exit_code == 0
    (tmp_path / "store").mkdir()
    assert cli("target", "add", "plans", "--type", "local", "--path", str(tmp_path / "store")).exit_code == 0
    run = _runner(cli)
    try:
        jobs = [run("host", "ping", registered_host), *_lifecycle(run, template, route=API)]
        blank = unique("plan-blank")
        jobs.append(
            run("vm", "create", blank, "--blank", "--host", registered_host, "--cpus", "1", "--memory", "1G",
                "--disk", "1G", "--no-power-on")
        )  # fmt: skip
        jobs.append(run("vm", "delete", blank, "--yes"))
        source = unique("bk")
        make_template(si, sim.datastore_dir(), source, os.urandom(4096))
        jobs += _other_kinds(run, registered_host, source, tmp_path)
    finally:
        for vm in set(vm_names(si)) - before:
            destroy_vm(si, vm)
    assert _kinds(jobs) == set(PLANS) - {"test.sleep"}
    assert [d for job in jobs for d in departures(job, API)] == []
    # The API route reads the backups' disks through change tracking: those steps were held too.
    backups = [j["steps"] for j in jobs if j["kind"] == "backup.create"]
    assert all(BackupSteps.query_changed_areas.ran_in(steps) for steps in backups)
    assert any(BlankVmSteps.check_placement.ran_in(j["steps"]) for j in jobs)  # held to BlankVmSteps


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # steps, not SQL: one is enough
def test_every_kind_follows_its_plan_on_the_ssh_route(
    cli: Cli, free_sim: SimulatorHost, shell: SshServer, tmp_path: Path
) -> None:
    host, _ = register_ssh_host(cli, free_sim, shell, tmp_path)
    template = unique("tmpl")
    make_ssh_template(shell, free_sim, template, os.urandom(4096), mac="00:50:56:3e:aa:01")
    assert cli("template", "add", template, "--host", host).exit_code == 0
    (tmp_path / "store").mkdir()
    assert cli("target", "add", "plans", "--type", "local", "--path", str(tmp_path / "store")).exit_code == 0
    run = _runner(cli)
    jobs = [run("host", "ping", host), *_lifecycle(run, template, route=SSH)]
    jobs += _other_kinds(run, host, template, tmp_path)
    assert _kinds(jobs) == set(PLANS) - {"test.sleep"}
    assert [d for job in jobs for d in departures(job, SSH)] == []


# -- the fake backend ----------------------------------------------------------------------------------
def test_every_kind_follows_its_plan_on_the_fake_backend(
    fake: tuple[Runtime, FakeBackend],
) -> None:
    runtime, host = fake
    host.add_vm("tmpl")
    with Session(runtime.engine) as session:
        session.add(Template(name="tmpl", host=HOST, status="passed"))
        session.commit()

    def run(kind: str, **params: Any) -> dict[str, Any]:
        request = JobRequest(kind=kind, host=HOST, target=str(params.get("name", "")), params=params)
        job, _ = submit_job(runtime, request)
        run_job(runtime, job.id)
        with Session(runtime.engine) as session:
            row = get_job(session, job.id)
        assert row.state == "succeeded", (kind, params, row.error_message, row.steps)
        return {"kind": row.kind, "steps": row.steps, "params": row.params}

    jobs = [
        run("test.sleep", seconds=0, steps=2),
        run("vm.create", name="web", template="tmpl", disk="2G", wait_ip=False),
        *(run("vm.power", name="web", action=a) for a in ("off", "on", "reset", "reboot")),
        run("vm.power", name="web", action="shutdown", force=True, timeout_guest=1),
        run("vm.snapshot.create", name="web", snapshot="s1"),
        run("vm.snapshot.revert", name="web", snapshot="s1"),
        run("vm.snapshot.delete", name="web", snapshot="s1"),
        run("vm.reconfigure", name="web", cpus=4),
        run("vm.clone", name="copy", source="web", hot=True),
        run("vm.clone", name="copy2", source="web", shutdown_source=True),
        run("vm.delete", name="copy", force=True),
    ]
    assert _kinds(jobs) == set(PLANS) - {
        "host.ping",
        "backup.create",
        "backup.restore",
        "backup.drill",
        "template.import",
    }
    assert [d for job in jobs for d in departures(job, "fake")] == []


def test_a_step_out_of_its_plan_is_a_departure() -> None:
    """The check can fail: an undeclared step, one out of order, a call the plan does not name, a\n    step the plan shows that did not run."""
    job = {
        "kind": "vm.delete",
        "steps": [
            {"name": "destroy", "calls": [{"method": "VirtualMachine.Destroy_Task", "args": {}}]},
            {"name": "inspect"},
            {"name": "sweep the floor"},
            {"name": "check folder", "calls": [{"method": "VirtualMachine.PowerOffVM_Task", "args": {}}]},
        ],
    }
    assert len(departures(job, API)) == 3
    ran = [{"name": n} for n in ("inspect", "lock", "check", "check folder")]  # no "destroy"
    promised = {
        "kind": "vm.delete",
        "steps": ran,
        "params": {"name": "web", "host": "h"},
        "state": "succeeded",
    }
    assert departures(promised, API) == ["'destroy' is in the plan but did not run"]
