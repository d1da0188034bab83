"""Recording helpers called from core code. They import prometheus_client only
when metrics are enabled in this process, and never raise."""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = [
    "enabled",
    "observe_esxi_request",
    "observe_job",
    "observe_lock_wait",
    "observe_queue_wait",
    "observe_session",
    "record_in_process",
]

log = logging.getLogger(__name__)

_INPROCESS = "CESO_METRICS_INPROCESS"


def enabled() -> bool:
    """Metrics are recorded only in processes that serve them (workers, cesod)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")) or os.environ.get(_INPROCESS) == "1"


def record_in_process() -> None:
    """Record from now on into this process's own registry (cesod: one process, many threads).

    Workers need nothing of the kind: their multiprocess directory switches recording on.
    """
    os.environ[_INPROCESS] = "1"


def _safe(fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> None:
        if not enabled():
            return
        try:
            fn(*args, **kwargs)
        except Exception:  # bookkeeping never breaks the caller
            log.debug("metric %s not recorded", fn.__name__, exc_info=True)

    return wrapper


@_safe
def observe_job(kind: str, host: str, outcome: str, seconds: float) -> None:
    from ceso.metrics.definitions import JOB_DURATION, JOBS

    JOB_DURATION.labels(kind, host, outcome).observe(seconds)
    JOBS.labels(kind, host, outcome).inc()


@_safe
def observe_queue_wait(kind: str, host: str, seconds: float) -> None:
    from ceso.metrics.definitions import JOB_QUEUE_WAIT

    JOB_QUEUE_WAIT.labels(kind, host).observe(max(0.0, seconds))


@_safe
def observe_lock_wait(kind: str, host: str, seconds: float) -> None:
    from ceso.metrics.definitions import LOCK_WAIT

    LOCK_WAIT.labels(kind, host).observe(seconds)


@_safe
def observe_esxi_request(host: str, method: str, seconds: float, fault: str | None) -> None:
    from ceso.metrics.definitions import ESXI_ERRORS, ESXI_REQUEST_DURATION

    ESXI_REQUEST_DURATION.labels(host, method).observe(seconds)
    if fault is not None:
        ESXI_ERRORS.labels(host, method, fault).inc()


@_safe
def observe_session(host: str, event: str, open_delta: int) -> None:
    from ceso.metrics.definitions import ESXI_POOL, ESXI_SESSIONS

    if event:
        ESXI_SESSIONS.labels(host, event).inc()
    if open_delta:
        ESXI_POOL.labels(host).inc(open_delta)


@_safe
def observe_backup_bytes(host: str, target: str, stage: str, count: int) -> None:
    from ceso.metrics.definitions import BACKUP_BYTES

    BACKUP_BYTES.labels(host, target, stage).inc(count)


@_safe
def observe_agent_operation(agent: str, mode: str, operation: str, outcome: str) -> None:
    from ceso.metrics.definitions import AGENT_OPERATIONS

    AGENT_OPERATIONS.labels(agent, mode, operation, outcome).inc()


@_safe
def count_cesod_refusal(reason: str) -> None:
    from ceso.metrics.definitions import CESOD_REFUSED

    CESOD_REFUSED.labels(reason).inc()
