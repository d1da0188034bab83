"""What a followed job's progress says: its step, and bytes, rate and time left when the step reports them."""

from __future__ import annotations

from ceso.cli.application import _job_line
from ceso.cli.progress import human_bytes
from ceso.db.models import Job


def _job(**step: object) -> Job:
    return Job(
        id="1a2b3c4d-0000-0000-0000-000000000000", kind="backup.create", host="esxi-a", state="running",
        current_step="copy disk 1/1", progress=40, steps=[{"name": "copy disk 1/1", **step}],
    )  # fmt: skip


def test_a_copy_shows_bytes_rate_and_time_left() -> None:
    line = _job_line(_job(bytes_done=3 * 2**30, bytes_total=8 * 2**30, rate_mib_s=55.0, eta_s=93))
    assert line == "job 1a2b3c4d running: copy disk 1/1 (3.0 GiB of 8.0 GiB, 55.0 MiB/s, 93 s left)"


def test_a_step_without_bytes_shows_its_name() -> None:
    assert _job_line(_job()) == "job 1a2b3c4d running: copy disk 1/1"


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 1536, 5 * 2**20, 2**41)] == [
        "512 B",
        "1.5 KiB",
        "5.0 MiB",
        "2.0 TiB",
    ]


def test_an_import_reports_bytes_in_the_shape_a_backup_does() -> None:
    from ceso.jobs.task_progress import byte_details

    # 3 GiB of 8 GiB in 60 s: the keys a backup's copy writes, so the same line shows them.
    copied = byte_details(3 * 2**30, 8 * 2**30, 60.0)
    assert copied == {"bytes_done": 3 * 2**30, "bytes_total": 8 * 2**30, "rate_mib_s": 51.2, "eta_s": 100}
    line = _job_line(_job(**copied))
    assert line == "job 1a2b3c4d running: copy disk 1/1 (3.0 GiB of 8.0 GiB, 51.2 MiB/s, 100 s left)"
    # A download whose size is not known yet: no total, no time left.
    unknown = byte_details(5 * 2**20, None, 2.0)
    assert unknown == {"bytes_done": 5 * 2**20, "bytes_total": None, "rate_mib_s": 2.5, "eta_s": None}
    assert _job_line(_job(**unknown)).endswith("(5.0 MiB, 2.5 MiB/s)")
