"""Waiting for a job to end: its SQL row is read again on each notice from the worker
(:mod:`ceso.jobs.notify`), or after a capped backoff when no notice comes."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ceso.db.models import TERMINAL_STATES, Job
from ceso.errors import TimeoutExpiredError
from ceso.jobs.notify import JobNotices
from ceso.jobs.store import get_job

__all__ = ["wait_for_job"]


def wait_for_job(
    engine: Engine,
    job_id: str,
    *,
    timeout: float | None = None,
    on_update: Callable[[Job], None] | None = None,
    redis_url: str | None = None,
) -> Job:
    """Return the job once it is succeeded, failed or cancelled.

    ``on_update`` sees every read (for progress display). With ``redis_url``
    the row is read again as soon as the worker announces a change (without
    ``on_update``, only the end of its run: step notices would buy reads that
    nobody sees); the backoff (50 ms growing to 1 s) bounds the wait when no
    notice comes.
    Raises TimeoutExpiredError after ``timeout`` seconds; the job itself goes on.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    with JobNotices(redis_url, job_id) as notices:  # subscribed before the first read: no change is missed
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
            seconds = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
            notices.wait(seconds, progress=on_update is not None)
            delay = min(delay * 1.5, 1.0)
