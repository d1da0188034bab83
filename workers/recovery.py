"""Recovery when a worker starts: publish what the outbox still holds."""

from __future__ import annotations

import logging
import threading

from ceso.constants import QUEUE_PREFIX
from ceso.jobs.leftovers import retry_pending_cleanups
from ceso.jobs.publish import publish_job
from ceso.jobs.store import mark_published, unpublished_or_stale
from ceso.runtime import get_runtime

log = logging.getLogger(__name__)


def republish_pending(queues: list[str]) -> int:
    """Re-publish queued-but-unpublished and stale running jobs of the hosts behind ``queues``.

    Duplicates are harmless: the claim is a compare-and-set. Returns the count.
    """
    hosts = _hosts(queues)
    if not hosts:
        return 0
    runtime = get_runtime()
    try:
        ids = unpublished_or_stale(
            runtime.engine, hosts=hosts, stale_after_s=runtime.settings.jobs.stale_after_s
        )
    except Exception:
        log.exception("outbox scan failed")
        return 0
    from sqlmodel import Session

    from ceso.db.models import Job

    for job_id in ids:
        with Session(runtime.engine) as session:
            job = session.get(Job, job_id)
        if job is None:
            continue
        try:
            publish_job(runtime.settings.redis_url, job_id=job_id, host=job.host)
            mark_published(runtime.engine, job_id)
            log.info("re-published job %s to %s", job_id, job.host)
        except Exception:
            log.exception("re-publishing job %s failed", job_id)
    return len(ids)


def _hosts(queues: list[str]) -> list[str]:
    return [q.removeprefix(QUEUE_PREFIX) for q in queues if q.startswith(QUEUE_PREFIX)]


def start_recovery_thread(queues: list[str]) -> threading.Thread:
    """Run :func:`republish_pending` (and retry pending cleanups, :mod:`ceso.jobs.leftovers`) now and
    then every ``jobs.stale_after_s`` seconds.

    Runs in the worker's main process (a daemon thread), so jobs orphaned by a
    dead worker anywhere are picked up within about two stale periods.
    """
    interval = get_runtime().settings.jobs.stale_after_s

    def loop() -> None:
        while True:
            republish_pending(queues)
            retry_pending_cleanups(get_runtime(), _hosts(queues))
            threading.Event().wait(interval)

    thread = threading.Thread(target=loop, name="ceso-recovery", daemon=True)
    thread.start()
    return thread


def start_probe_thread(queues: list[str]) -> threading.Thread | None:
    """Re-run the capability probe (``host check``) of this worker's hosts every
    ``host_probe_interval_s``, starting now, so a licence change or a broken SSH
    login shows up in the route choice without an operator. Failures are logged."""
    from ceso.hosts.registry import check_host

    interval = get_runtime().settings.host_probe_interval_s
    hosts = [q.removeprefix(QUEUE_PREFIX) for q in queues if q.startswith(QUEUE_PREFIX)]
    if not interval or not hosts:
        return None

    def loop() -> None:
        while True:
            for host in hosts:
                try:
                    check_host(get_runtime(), host)
                except Exception as exc:  # an unreachable host must not stop the others' probes
                    log.warning("periodic probe of host %s failed: %s", host, exc)
            threading.Event().wait(interval)

    thread = threading.Thread(target=loop, name="ceso-host-probe", daemon=True)
    thread.start()
    return thread
