"""Waiting for a job to end: its SQL row is read again on each notice from the worker
(:mod:`ceso.jobs.notify`), or after a capped backoff when no notice comes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ceso.db.errors import database_errors
from ceso.db.models import TERMINAL_STATES, Job
from ceso.errors import TimeoutExpiredError
from ceso.jobs.liveness import BEAT_S, live_workers, no_worker_message
from ceso.jobs.notify import JobNotices
from ceso.jobs.store import get_job

if TYPE_CHECKING:
    import redis

__all__ = ["wait_for_job"]


def wait_for_job(
    engine: Engine,
    job_id: str,
    *,
    timeout: float | None = None,
    on_update: Callable[[Job], None] | None = None,
    redis_url: str | None = None,
    on_no_worker: Callable[[str], None] | None = None,
) -> Job:
    """Return the job once it is succeeded, failed or cancelled.

    ``on_update`` sees every read (for progress display). With ``redis_url``
    the row is read again as soon as the worker announces a change (without
    ``on_update``, only the end of its run: step notices would buy reads that
    nobody sees); the backoff (50 ms growing to 1 s) bounds the wait when no
    notice comes.
    While the job is queued, its host's live workers are looked up (with ``redis_url``) at once
    and then every :data:`~ceso.jobs.liveness.BEAT_S`: ``on_no_worker`` hears once when there is
    none. Raises TimeoutExpiredError after ``timeout`` seconds; the job itself goes on.
    OperationError (``database_unreachable``) if the database cannot be read: the job
    goes on too, and ``job wait`` follows it again once the database is back.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    serving = _ServingWorkers(redis_url)
    with JobNotices(redis_url, job_id) as notices:  # subscribed before the first read: no change is missed
        while True:
            with database_errors(), Session(engine) as session:
                job = get_job(session, job_id)
            if on_update is not None:
                on_update(job)
            if job.state in TERMINAL_STATES:
                return job
            if job.state == "queued" and on_no_worker is not None and serving.none_for(job.host):
                on_no_worker(no_worker_message(job.host))
                on_no_worker = None  # said once
            if deadline is not None and time.monotonic() >= deadline:
                if job.state == "queued":
                    workers = serving.count(job.host)
                    if workers == 0:
                        why = f"no live worker serves host {job.host}"
                    elif workers:
                        why = f"{workers} live worker(s) of host {job.host} have not taken it yet"
                    else:
                        why = "no worker has taken it yet"
                    raise TimeoutExpiredError(
                        f"job {job_id} still queued after {timeout:g}s: {why} (it stays queued)"
                    )
                raise TimeoutExpiredError(
                    f"job {job_id} still {job.state} after {timeout:g}s (it goes on running)"
                )
            seconds = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
            notices.wait(seconds, progress=on_update is not None)
            delay = min(delay * 1.5, 1.0)


class _ServingWorkers:
    """Live-worker look-ups for a waiter, at most one per :data:`BEAT_S`; None when unknown."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self._client: redis.Redis | None = None
        self._checked_at = -BEAT_S
        self._count: int | None = None

    def count(self, host: str) -> int | None:
        if self.redis_url is None:
            return None
        now = time.monotonic()
        if now - self._checked_at >= BEAT_S:
            self._checked_at = now
            try:
                if self._client is None:
                    import redis

                    self._client = redis.Redis.from_url(
                        self.redis_url, socket_timeout=2, socket_connect_timeout=2
                    )
                self._count = len(live_workers(self._client, host))
            except Exception:  # Redis away: unknown, and the job's own wait says the rest
                self._count = None
        return self._count

    def none_for(self, host: str) -> bool:
        return self.count(host) == 0
