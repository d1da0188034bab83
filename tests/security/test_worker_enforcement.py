"""Enforcement where the work happens: the worker re-checks the job's actor and its mode *now*.

Real worker processes, Redis and the simulator; effects on the host read back independently.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ceso.jobs.publish import publish_job
from ceso.jobs.store import create_job
from tests.conftest import Cli, unique
from tests.security.helpers import add_agent, as_agent, audit_rows
from tests.support.vms import vm_names
from tests.vm.conftest import TemplateBed


def _wait(cli: Cli, job_id: str, timeout: float = 120) -> dict[str, Any]:
    result = cli("--json", "job", "wait", job_id, "--timeout", str(timeout))
    body: dict[str, Any] = result.json()
    return body


def _create(cli: Cli, mp: pytest.MonkeyPatch, token: str, bed: TemplateBed, name: str, *extra: str) -> Any:
    # Powered off: the bed's cleanup destroys VMs without powering them off first.
    args = ("--json", "vm", "create", name, "--template", bed.template, "--no-power-on", *extra)
    return as_agent(cli, mp, token, *args)


def _events(url: str, job_id: str) -> list[str]:
    return [r["event"] for r in audit_rows(url, "job_id = :j", j=job_id)]


def test_forged_job_message_for_a_read_only_agent_is_refused(
    cli: Cli, bed: TemplateBed, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    """A job row written behind ceso's back and its message put straight on Redis: refused, nothing made."""
    add_agent(cli, "reader")
    from ceso.runtime import get_runtime

    name = unique("forged")
    before = set(vm_names(bed.si))
    job, _ = create_job(
        get_runtime().engine,
        kind="vm.create",
        host=bed.host,
        target=name,
        params={"name": name, "template": bed.template},
        actor="agent:reader",
        idempotency_key=None,
        max_attempts=3,
    )
    publish_job(ceso_env["CESO_REDIS_URL"], job_id=job.id, host=bed.host)  # kombu: ceso.run_job(job id)
    body = _wait(cli, job.id)
    assert body["state"] == "failed"
    assert body["error"]["code"] == "not_permitted"
    assert "needs mode standard" in body["error"]["message"]
    assert body["steps"] == []
    assert set(vm_names(bed.si)) == before and not (bed.datastore_dir / name).exists()
    assert _events(ceso_env["CESO_DATABASE_URL"], job.id) == ["job.claimed", "job.refused", "job.failed"]
    (refused,) = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'job.refused'")
    assert (refused["actor"], refused["mode"], refused["source"]) == ("agent:reader", "read-only", "worker")


def test_read_only_agent_cannot_create_through_the_cli(
    cli: Cli, bed: TemplateBed, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "reader")
    before = set(vm_names(bed.si))
    refused = _create(cli, monkeypatch, token, bed, unique("web"))
    assert refused.exit_code == 3 and refused.json()["error"]["code"] == "not_permitted"
    assert set(vm_names(bed.si)) == before
    assert cli("--json", "job", "list").json() == []
    assert [
        r["operation"] for r in audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'access.refused'")
    ] == ["vm.create"]


def test_promotion_allows_and_its_end_refuses_even_a_job_queued_before(
    cli: Cli, bed: TemplateBed, start_worker: Any, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    token = add_agent(cli, "builder")
    ask = ("--json", "agent", "request-promotion", "--mode", "standard", "--reason", "build web tier")
    first = as_agent(cli, monkeypatch, token, *ask, "--for", "10m").json()
    assert cli("agent", "approve", str(first["id"])).exit_code == 0
    allowed = unique("web")
    made = _create(cli, monkeypatch, token, bed, allowed, "--timeout", "120")
    assert made.exit_code == 0, made.stdout
    assert made.json()["state"] == "succeeded" and made.json()["actor"] == "agent:builder"
    assert allowed in vm_names(bed.si)
    events = _events(url, made.json()["id"])
    assert events[:2] == ["job.submitted", "job.claimed"] and events[-1] == "job.succeeded"
    steps = [r for r in audit_rows(url, "job_id = :j AND event = 'job.step'", j=made.json()["id"])]
    copy = next(s for s in steps if s["details"]["name"].startswith("copy disk"))
    assert copy["details"]["calls"][0]["method"] == "VirtualDiskManager.CopyVirtualDisk_Task"
    assert {s["actor"] for s in steps} == {"agent:builder"} and {s["mode"] for s in steps} == {"standard"}
    assert cli("agent", "revoke-promotion", str(first["id"])).exit_code == 0

    # Promoted for a few seconds; the job is queued while no worker runs; the promotion ends; then a worker.
    second = as_agent(cli, monkeypatch, token, *ask, "--for", "10m").json()
    assert cli("agent", "approve", str(second["id"]), "--for", "4s").exit_code == 0
    bed.worker.stop()
    late = unique("late")
    queued = _create(cli, monkeypatch, token, bed, late, "--no-wait")
    assert queued.exit_code == 0 and queued.json()["state"] == "queued"
    time.sleep(4.5)
    start_worker(bed.host)
    body = _wait(cli, queued.json()["id"])
    assert body["state"] == "failed" and body["error"]["code"] == "not_permitted"
    assert "mode read-only" in body["error"]["message"]
    assert late not in vm_names(bed.si) and not (bed.datastore_dir / late).exists()
    assert _events(url, body["id"]) == ["job.submitted", "job.claimed", "job.refused", "job.failed"]
    refused_cli = _create(cli, monkeypatch, token, bed, unique("after"))
    assert refused_cli.exit_code == 3


def test_a_revoked_agents_queued_job_is_refused(
    cli: Cli, bed: TemplateBed, start_worker: Any, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "builder", "standard")
    bed.worker.stop()
    name = unique("orphan")
    queued = _create(cli, monkeypatch, token, bed, name, "--no-wait").json()
    assert cli("agent", "revoke", "builder").exit_code == 0
    start_worker(bed.host)
    body = _wait(cli, queued["id"])
    assert body["state"] == "failed" and "was revoked" in body["error"]["message"]
    assert name not in vm_names(bed.si)
