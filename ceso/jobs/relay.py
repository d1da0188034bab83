"""The outbox relay: publish again the jobs of some hosts that no delivery is going to run.

A job's row is committed before its message exists (:mod:`ceso.jobs.submit`), and the message can
be lost afterwards: Redis restarted without persistence, a delivery that could not reach SQL and
was acknowledged anyway, a worker killed between receiving a message and claiming its job (the
message then waits for the broker's visibility timeout, an hour), a worker dead while it held the
job. Each worker relays for its own hosts every ``jobs.relay_interval_s``
(:func:`relay_jobs`). Publishing twice is harmless: the claim is a compare-and-set on the row, and
a delivery that finds the job held or ended does not run it.

A job is published again when it is

- ``queued`` and was never published (the submit could not reach Redis);
- ``queued``, published more than ``jobs.republish_after_s`` ago, and not waiting in its queue;
- ``running`` with a heartbeat older than ``jobs.stale_after_s``, and not waiting in its queue;
- ``running`` under a claim of a dead process of this machine (:func:`release_dead_claims`).

"Waiting in its queue" is read from the Redis lists of the host's queue; a message a worker has
received but not acknowledged is not there, which is what makes the second and third cases
reach a message held by a dead worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from ceso.constants import queue_for_host
from ceso.db.models import Job
from ceso.db.types import utcnow
from ceso.jobs.publish import publish_job
from ceso.jobs.store import mark_published

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine

    from ceso.runtime import Runtime

__all__ = ["relay_jobs", "release_dead_claims", "waiting_in_queues"]

log = logging.getLogger(__name__)

#: kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
#: A queue longer than this is not read whole: its host's published jobs are then not relayed.
MAX_SCAN = 10_000
#: A claim is a dead process's only when its heartbeat also missed this many beats.
DEAD_AFTER_BEATS = 2


def waiting_in_queues(client: redis.Redis, hosts: list[str]) -> dict[str, set[str] | None]:
    """Per host, the ids of the jobs whose message waits in its queue; None if the queue is longer
    than :data:`MAX_SCAN` (then nobody can say a job is missing from it). Raises redis errors."""
    found: dict[str, set[str] | None] = {}
    for host in hosts:
        ids: set[str] = set()
        keys = [queue_for_host(host) + suffix for suffix in _PRIORITY_SUFFIXES]
        if any(int(client.llen(key)) > MAX_SCAN for key in keys):
            found[host] = None
            continue
        for key in keys:
            for raw in client.lrange(key, 0, MAX_SCAN - 1):
                try:
                    ids.add(str(json.loads(raw)["headers"]["id"]))
                except (ValueError, KeyError, TypeError):
                    continue  # not a task message of ceso's: nothing to match
        found[host] = ids
    return found


def _pid_gone(pid: int) -> bool:
    """True if no process ``pid`` runs on this machine (a zombie counts as gone: it runs no code)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def release_dead_claims(
    engine: Engine, *, hosts: list[str], heartbeat_s: float, stale_after_s: float
) -> list[str]:
    """Make claimable now the running jobs on ``hosts`` whose claim belongs to a process of this
    machine that no longer exists; return their ids.

    Liveness is read twice: the job's heartbeat is older than :data:`DEAD_AFTER_BEATS` beats,
    and the process named in its ``worker`` (``<machine>:<pid>``) is gone. Only then is the
    heartbeat moved back past ``stale_after_s``, fenced on the claim and on the heartbeat read
    (a live run that beat in between keeps its claim), so the next delivery claims the job
    without waiting for the stale period. A claim of another machine is left to that period.
    """
    now = utcnow()
    machine = socket.gethostname()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(col(Job.id), col(Job.worker), col(Job.attempts), col(Job.heartbeat_at)).where(
                col(Job.host).in_(hosts),
                col(Job.state) == "running",
                col(Job.worker).like(f"{machine}:%"),
                col(Job.heartbeat_at) < now - timedelta(seconds=DEAD_AFTER_BEATS * heartbeat_s),
            )
        ).all()
    released: list[str] = []
    for job_id, worker, attempts, heartbeat_at in rows:
        assert worker is not None and heartbeat_at is not None  # matched by LIKE and < above
        holder_machine, pid = str(worker).rsplit(":", 1)
        # LIKE took "_" and "%" in the machine's name as wildcards: compare exactly.
        if holder_machine != machine or not pid.isdigit() or not _pid_gone(int(pid)):
            continue
        if _release(
            engine, job_id, worker, attempts, heartbeat_at, now - timedelta(seconds=2 * stale_after_s)
        ):
            log.warning("job %s: its worker %s is gone; releasing its claim", job_id, worker)
            released.append(str(job_id))
    return released


def _release(
    engine: Engine, job_id: str, worker: str, attempts: int, seen: datetime, stale: datetime
) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(Job)
            .where(
                col(Job.id) == job_id,
                col(Job.state) == "running",
                col(Job.attempts) == attempts,
                col(Job.worker) == worker,
                col(Job.heartbeat_at) == seen,
            )
            .values(heartbeat_at=stale)
        )
    return bool(result.rowcount)


def _candidates(
    engine: Engine, *, hosts: list[str], republish_after_s: float, stale_after_s: float
) -> list[tuple[str, str, bool]]:
    """(id, host, never published) of the queued and stale running jobs of ``hosts`` due a publish."""
    now = utcnow()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(col(Job.id), col(Job.host), col(Job.published_at).is_(None)).where(
                col(Job.host).in_(hosts),
                sa.or_(
                    sa.and_(
                        col(Job.state) == "queued",
                        col(Job.cancel_requested).is_(False),
                        sa.or_(
                            col(Job.published_at).is_(None),
                            col(Job.published_at) < now - timedelta(seconds=republish_after_s),
                        ),
                    ),
                    sa.and_(
                        col(Job.state) == "running",
                        col(Job.heartbeat_at) < now - timedelta(seconds=stale_after_s),
                    ),
                ),
            )
        ).all()
    return [(str(i), str(h), bool(never)) for i, h, never in rows]


def relay_jobs(runtime: Runtime, hosts: list[str]) -> list[str]:
    """One pass of the relay for ``hosts``: release dead claims, publish what no delivery will run,
    stamp ``published_at``; return the ids published. Raises SQL and Redis errors (the caller logs
    them and tries again at its next pass); a job whose publish fails is logged and skipped."""
    if not hosts:
        return []
    jobs = runtime.settings.jobs
    engine = runtime.engine
    release_dead_claims(engine, hosts=hosts, heartbeat_s=jobs.heartbeat_s, stale_after_s=jobs.stale_after_s)
    due = _candidates(
        engine, hosts=hosts, republish_after_s=jobs.republish_after_s, stale_after_s=jobs.stale_after_s
    )
    if not due:
        return []
    waiting = waiting_in_queues(runtime.redis, sorted({host for _, host, _ in due}))
    published: list[str] = []
    for job_id, host, never in due:
        in_queue = waiting[host]
        if not never and (in_queue is None or job_id in in_queue):
            continue  # its message waits (or may wait) in the queue: a worker will get to it
        try:
            publish_job(runtime.settings.redis_url, job_id=job_id, host=host)
        except Exception:
            log.warning("relay: publishing job %s to %s failed", job_id, host, exc_info=True)
            continue
        mark_published(engine, job_id)
        log.info("relay: job %s published again to %s", job_id, host)
        published.append(job_id)
    return published
