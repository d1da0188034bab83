"""Waiting for a job to end, by polling its SQL row with capped backoff."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ceso.db.models import TERMINAL_STATES, Job
from ceso.errors import TimeoutExpiredError
from ceso.jobs.store import get_job

__all__ = ["wait_for_job"]


def wait_for_job(
    engine: Engine,
    job_id: str,
    *,
    timeout: float | None = None,
    on_update: Callable[[Job], None] | None = None,
) -> Job:
    """Return the job once it is succeeded, failed or cancelled.

    ``on_update`` sees every poll (for progress display). Raises
    TimeoutExpiredError after ``timeout`` seconds; the job itself goes on.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    while True:
        with Session(engine) as session:
            job = get_job(session, job_id)
        if on_update is not None:
            on_update(job)
        if job.state in TERMINAL_STATES:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutExpiredError(
                f"job {job_id} still {job.state} after {timeout:g}s (it goes on running)"
            )
        time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
        delay = min(delay * 1.5, 1.0)
