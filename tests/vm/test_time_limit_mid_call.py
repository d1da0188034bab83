"""A time limit that strikes inside a host call (a slow host: the call was sent, its answer had
not come): the job fails with ``time_limit``, not the call's error, and its cleanup removes what
the cut-short call made. On FakeBackend, whose call does its work and then raises the wrapped
limit as the real routes' translation does (tests/chaos/test_host_slow.py runs it on the simulator)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from ceso.backends.fake import FakeBackend
from ceso.errors import OperationError
from ceso.jobs.request import JobRequest
from ceso.jobs.runner import run_job
from ceso.jobs.store import get_job
from ceso.jobs.submit import submit_job
from ceso.runtime import Runtime
from tests.conftest import FAKE_HOST as HOST


class SoftLimit(Exception):
    """Stands for Celery's SoftTimeLimitExceeded (the worker passes that one)."""


@pytest.mark.parametrize("method", ["make_directory", "create_vm"])
def test_a_time_limit_inside_a_host_call(fake: tuple[Runtime, FakeBackend], method: str) -> None:
    runtime, host = fake
    host.add_vm("src")
    wrapped = OperationError(f"{method} on host {HOST}: SoftLimit: SoftLimit()", code="esxi_fault")
    wrapped.__cause__ = SoftLimit()
    host.lose_answer(method, wrapped)
    job, _ = submit_job(
        runtime,
        JobRequest(kind="vm.clone", host=HOST, target="copy", params={"name": "copy", "source": "src"}),
    )
    run_job(runtime, job.id, time_limit_exceptions=(SoftLimit,))
    with Session(runtime.engine) as session:
        done = get_job(session, job.id)
    assert (done.state, done.error_code) == ("failed", "time_limit"), done.error_message
    assert [m for m, _ in host.calls].count(method) == 1  # the call did reach the host
    assert not host.exists("copy")
    assert not any(f.startswith("copy/") for f in host.files["datastore1"]), host.files
    assert {s["name"]: s["state"] for s in done.steps or []}["clean up after failure"] == "succeeded"
