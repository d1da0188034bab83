"""A restore out of attempts removes the VM its attempts made, and only that one.

The job runs through the real out-of-attempts path (``fail_exhausted``: SQL row, claim, cleanup
steps) against the in-memory FakeBackend, whose VMs are read back directly. A restore's params
name its new VM under ``as``; an in-place restore's VM is the operator's own and is never removed.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from ceso.backends.fake import FakeBackend
from ceso.backends.vmomi import vim
from ceso.db.models import Job
from ceso.errors import CesoError
from ceso.jobs.leftovers import fail_exhausted
from ceso.jobs.request import JobRequest
from ceso.jobs.store import claim_job, get_job
from ceso.jobs.submit import submit_job
from ceso.operations.leftovers import JOB_MARKER
from ceso.runtime import Runtime
from ceso.security.worker import ClaimCheck
from tests.conftest import FAKE_HOST as HOST

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _exhaust(runtime: Runtime, backend: FakeBackend, params: dict[str, Any], marked: str | None) -> Job:
    job, _ = submit_job(runtime, JobRequest(kind="backup.restore", host=HOST, target="src", params=params))
    claimed = claim_job(
        runtime.engine, job_id=job.id, worker="last:1", stale_after_s=0, audit=ClaimCheck(runtime)
    )
    assert claimed is not None
    if marked is not None:  # what a killed attempt left: a VM carrying this job's marker
        vm = backend.add_vm(marked)
        vm.config["config.extraConfig"] = [vim().option.OptionValue(key=JOB_MARKER, value=job.id)]
    fail_exhausted(runtime, claimed, CesoError("out of attempts", code="attempts_exhausted"), claimed_at=0.0)
    with Session(runtime.engine) as session:
        return get_job(session, job.id)


def test_restore_as_out_of_attempts_removes_its_new_vm(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, backend = fake
    backend.add_vm("bystander")  # same host, no marker: left alone
    job = _exhaust(runtime, backend, {"backup_id": "b1", "as": "restored", "in_place": False}, "restored")
    assert job.state == "failed" and job.error_code == "attempts_exhausted"
    assert [v.name for v in backend.vms] == ["bystander"]
    assert any(s["name"] == "remove leftovers" and s["state"] == "succeeded" for s in job.steps or [])


def test_restore_in_place_out_of_attempts_leaves_the_vm(fake: tuple[Runtime, FakeBackend]) -> None:
    runtime, backend = fake
    backend.add_vm("src")
    job = _exhaust(runtime, backend, {"backup_id": "b1", "in_place": True}, None)
    assert job.state == "failed"
    assert [v.name for v in backend.vms] == ["src"]
    assert not any(s["name"] == "remove leftovers" for s in job.steps or [])
