"""Recovery in a running worker: the outbox relay of its hosts (:mod:`ceso.jobs.relay`), the retry
of pending cleanups (:mod:`ceso.jobs.leftovers`) and the periodic capability probe."""

from __future__ import annotations

import logging
import threading
import time

from ceso.constants import QUEUE_PREFIX
from ceso.jobs.leftovers import retry_pending_cleanups
from ceso.jobs.relay import relay_jobs
from ceso.runtime import get_runtime

log = logging.getLogger(__name__)


def _hosts(queues: list[str]) -> list[str]:
    return [q.removeprefix(QUEUE_PREFIX) for q in queues if q.startswith(QUEUE_PREFIX)]


def relay_once(queues: list[str]) -> list[str]:
    """One relay pass for the hosts behind ``queues``; the ids published. Never raises: with SQL or
    Redis unreachable the pass is logged and the next one tries again."""
    try:
        return relay_jobs(get_runtime(), _hosts(queues))
    except Exception as exc:
        log.warning("outbox relay pass failed (tried again in %ss): %s",
                    get_runtime().settings.jobs.relay_interval_s, exc)  # fmt: skip
        return []


def start_recovery_thread(queues: list[str]) -> threading.Thread:
    """Run :func:`relay_once` now and then every ``jobs.relay_interval_s`` seconds, and retry the
    pending cleanups of this worker's hosts now and then every ``jobs.stale_after_s`` seconds.

    Runs in the worker's main process (a daemon thread): a job of this worker's hosts whose
    message was lost, or whose worker died, is published again within about one
    ``relay_interval_s`` of being due (see :mod:`ceso.jobs.relay` for when that is).
    """
    settings = get_runtime().settings.jobs
    stop = threading.Event()

    def loop() -> None:
        next_cleanup = time.monotonic()
        while True:
            relay_once(queues)
            if time.monotonic() >= next_cleanup:
                next_cleanup = time.monotonic() + settings.stale_after_s
                retry_pending_cleanups(get_runtime(), _hosts(queues))  # never raises
            stop.wait(settings.relay_interval_s)

    thread = threading.Thread(target=loop, name="ceso-relay", daemon=True)
    thread.start()
    return thread


def start_probe_thread(queues: list[str]) -> threading.Thread | None:
    """Re-run the capability probe (``host check``) of this worker's hosts every
    ``host_probe_interval_s``, starting now, so a licence change or a broken SSH
    login shows up in the route choice without an operator. Failures are logged."""
    from ceso.hosts.registry import check_host

    interval = get_runtime().settings.host_probe_interval_s
    hosts = _hosts(queues)
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
