"""Wake whoever waits for a job as soon as its row changes, instead of at their next poll.

The worker publishes on the Redis channel ``ceso:job:<id>`` after each step
record (the notice ``step``) and once its run has ended, the outcome committed
(``outcome``); :func:`wait_for_job` subscribes before it reads the row, so no
change can slip between the read and the wait. SQL stays the only truth: a
notice only says "read the row now". A waiter that shows no progress reads
the row again on ``outcome`` only (any notice other than ``step``, so a worker
of an older release still wakes it): a create of seven steps costs cesod two
reads instead of nine, on the machine that runs the job. Notices are best
effort — if Redis is unreachable the waiter falls back to polling with capped
backoff and the worker carries on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["OUTCOME", "STEP", "JobNotices", "channel", "notify_job"]

STEP = "step"  # a step was recorded: progress
OUTCOME = "outcome"  # the run has ended (its outcome is committed, or it stopped)

log = logging.getLogger(__name__)


def channel(job_id: str) -> str:
    """The Redis channel of one job."""
    return f"ceso:job:{job_id}"


def notify_job(runtime: Runtime, job_id: str, notice: str = STEP) -> None:
    """Tell waiters that job ``job_id`` changed (``STEP`` or ``OUTCOME``); never raises."""
    try:
        runtime.redis.publish(channel(job_id), notice)
    except Exception as exc:  # a lost notice only delays a waiter until its next poll
        log.debug("could not notify waiters of job %s: %s", job_id, exc)


class JobNotices:
    """A subscription to one job's channel; :meth:`wait` returns early when a notice arrives.

    Without Redis (``redis_url`` None, or unreachable) it degrades to a plain
    sleep, so callers need no second code path.
    """

    def __init__(self, redis_url: str | None, job_id: str) -> None:
        self._pubsub: Any = None
        if redis_url is None:
            return
        try:
            import redis

            client: Any = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel(job_id))
            self._pubsub = pubsub
        except Exception as exc:  # polling still works
            log.debug("no job notices for %s: %s", job_id, exc)

    def wait(self, seconds: float, *, progress: bool = True) -> bool:
        """Sleep up to ``seconds``; True if a notice cut the sleep short. Without ``progress``, ``step``
        notices are let pass: only the end of the run cuts the sleep short."""
        import time

        if self._pubsub is None:
            time.sleep(seconds)
            return False
        deadline = time.monotonic() + seconds
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                # None also comes back early for the (ignored) subscribe confirmation: wait on.
                message = self._pubsub.get_message(timeout=remaining)
                if message is not None and (progress or message.get("data") != STEP.encode()):
                    return True
        except Exception as exc:
            log.debug("job notices lost: %s", exc)
            self.close()
            time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception as exc:  # closing a dead connection
                log.debug("closing job notices: %s", exc)
            self._pubsub = None

    def __enter__(self) -> JobNotices:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
