"""A vSphere task's percent (a disk copy) moves the job's progress inside its step's share, and the
CLI shows it. The simulator never sets ``info.progress`` (its tasks finish without reporting any),
so the polling is checked here on answers shaped like a real host's, and the copy itself on the
simulator by the create tests."""

from __future__ import annotations

from typing import Any

from ceso.cli.application import _job_line
from ceso.db.models import Job
from ceso.esxi.client import EsxiClient
from ceso.jobs.task_progress import job_percent


def test_the_task_percent_is_mapped_into_the_step_share() -> None:
    assert [job_percent(p, start=10, end=60) for p in (0, 40, 100)] == [10, 30, 60]
    assert job_percent(-5, start=10, end=60) == 10 and job_percent(250, start=10, end=60) == 60


class _Answers(EsxiClient):
    """An EsxiClient whose property reads come from a list (what a host answers to successive polls)."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:  # no session: only wait_task is used
        self.name = "esxi-a"
        self.answers = answers
        self.asked: list[list[str]] = []

    def retrieve_object(self, obj: Any, props: list[str]) -> dict[str, Any]:
        self.asked.append(props)
        return self.answers.pop(0)


def test_wait_task_passes_each_percent_the_host_reports() -> None:
    client = _Answers(
        [
            {"info.state": "queued"},
            {"info.state": "running"},  # not estimated yet
            {"info.state": "running", "info.progress": 40},
            {"info.state": "running", "info.progress": 95},
            {"info.state": "success", "info.result": "done"},
        ]
    )
    seen: list[int] = []
    assert client.wait_task(object(), action="copy disk", on_progress=seen.append) == "done"
    assert seen == [40, 95]
    assert all("info.progress" in props for props in client.asked)
    plain = _Answers([{"info.state": "success", "info.result": 1}])
    assert plain.wait_task(object(), action="delete") == 1 and "info.progress" not in plain.asked[0]


def test_the_cli_line_shows_the_task_percent_and_time_left() -> None:
    job = Job(
        id="1a2b3c4d-0000-0000-0000-000000000000", kind="vm.create", host="esxi-a", state="running",
        current_step="copy disk 1/1", progress=30,
        steps=[{"name": "copy disk 1/1", "task_percent": 40, "eta_s": 12}],
    )  # fmt: skip
    assert _job_line(job) == "job 1a2b3c4d running: copy disk 1/1 (40%, 12 s left)"
