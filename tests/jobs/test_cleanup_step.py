"""Cleanup steps run whatever stops a job, and a failed cleanup never hides the job's cause.

In-process deliveries (``run_job``, no Celery, no host) on SQLite and PostgreSQL; the job row is
read back from SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ceso.errors import HostUnreachableError, OperationError
from ceso.jobs.cancel import cancel_job
from ceso.jobs.cleanup import always
from ceso.jobs.context import JobContext
from ceso.jobs.runner import Delivery, run_job
from ceso.plans import Step
from ceso.runtime import Runtime, get_runtime
from tests.conftest import _clear_caches
from tests.jobs.test_runner_transactions import _handler, _job, _row


@pytest.fixture
def runtime(ceso_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("CESO_JOBS__HEARTBEAT_S", "60")  # no beat during a test
    _clear_caches()
    yield get_runtime()


def test_a_stray_keyword_to_step_is_a_type_error(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """``force=True`` used to become a detail of the step; now it is refused where it is written."""

    def handler(ctx: JobContext) -> dict[str, Any]:
        with ctx.step(Step("clean up", ""), force=True):  # type: ignore[call-arg]
            pass
        return {}

    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    assert run_job(runtime, job_id) is Delivery.DONE
    row = _row(runtime, job_id)
    assert (row["state"], row["error_code"]) == ("failed", "internal_error")
    assert "TypeError" in row["error_message"]


def test_cleanup_runs_and_is_recorded_after_a_cancel(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    undone: list[str] = []

    def handler(ctx: JobContext) -> dict[str, Any]:
        with always(ctx, Step("remove snapshot", "", cleanup=True), lambda: undone.append("snapshot")):
            with ctx.step(Step("copy", "")):
                cancel_job(ctx.runtime, ctx.job.id)
            with ctx.step(Step("never runs", "")):
                undone.append("oops")
        return {}

    monkeypatch.setattr("ceso.jobs.context._FRESH_S", 0.0)  # every step reads the cancel flag
    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    assert run_job(runtime, job_id) is Delivery.DONE
    row = _row(runtime, job_id)
    assert row["state"] == "cancelled"
    assert undone == ["snapshot"]
    steps = {s["name"]: s for s in row["steps"]}
    assert list(steps) == ["copy", "remove snapshot"]
    assert steps["remove snapshot"]["state"] == "succeeded" and steps["remove snapshot"]["cleanup"] is True


def test_a_failed_cleanup_is_pending_and_the_cause_stays_the_error(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise HostUnreachableError("remove snapshot on host h: host unreachable: timed out")

    def handler(ctx: JobContext) -> dict[str, Any]:
        with always(ctx, Step("remove snapshot", "", cleanup=True), unreachable), ctx.step(Step("copy", "")):
            raise OperationError("copy failed: the disk is gone", code="esxi_fault")
        return {}

    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    assert run_job(runtime, job_id) is Delivery.DONE
    row = _row(runtime, job_id)
    assert (row["state"], row["error_code"]) == ("failed", "esxi_fault")
    assert row["error_message"].startswith("copy failed")
    cleanup = row["steps"][-1]
    assert (cleanup["name"], cleanup["state"], cleanup["pending"]) == ("remove snapshot", "failed", True)
    assert row["result"] == {"pending_cleanup": ["remove snapshot"]}


def test_a_failed_cleanup_after_success_fails_the_job(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise HostUnreachableError("remove snapshot on host h: host unreachable: timed out")

    def handler(ctx: JobContext) -> dict[str, Any]:
        with always(ctx, Step("remove snapshot", "", cleanup=True), unreachable), ctx.step(Step("copy", "")):
            pass
        return {}

    _handler(monkeypatch, handler)
    job_id = _job(runtime)
    assert run_job(runtime, job_id) is Delivery.DONE
    row = _row(runtime, job_id)
    assert (row["state"], row["error_code"]) == ("failed", "host_unreachable")
