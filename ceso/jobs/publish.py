"""Publish job messages to a host's queue, by task name.

The CLI never imports ``workers/``: it sends ``ceso.run_job`` with the job id
as the only argument and the job id as the Celery task id, through a minimal
Celery app configured for the same broker.
"""

from __future__ import annotations

import threading
from typing import Any

from ceso.constants import RUN_JOB_TASK, queue_for_host
from ceso.errors import TransientError

__all__ = ["publish_job", "publish_task"]

_apps: dict[str, Any] = {}
_apps_lock = threading.Lock()


def _producer_app(broker_url: str) -> Any:
    """One producer app per broker URL and process, made under a lock: celery's lazy package
    is not safe to import from several threads at once (a second thread can see it half made
    and fail with "cannot import name 'Celery'")."""
    with _apps_lock:
        if broker_url not in _apps:
            _apps[broker_url] = _make_producer_app(broker_url)
        return _apps[broker_url]


def _make_producer_app(broker_url: str) -> Any:
    from celery import Celery

    app = Celery("ceso-client", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=2,
        broker_transport_options={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        task_serializer="json",
    )
    return app


def publish_job(broker_url: str, *, job_id: str, host: str) -> None:
    """Put job ``job_id`` on ``esxi.<host>``. Raises TransientError if Redis is unreachable."""
    app = _producer_app(broker_url)
    try:
        app.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            task_id=job_id,
            queue=queue_for_host(host),
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception as exc:
        # kombu raises OperationalError and redis-py ConnectionError; both mean "not sent".
        raise TransientError(
            f"cannot publish job {job_id} to the queue of host {host}: {exc} "
            "(the job stays queued; a running worker of the host publishes it again once Redis answers)",
            code="broker_unreachable",
        ) from exc


def publish_task(broker_url: str, task: str, *, queue: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Send Celery task ``task`` by name to ``queue`` (the scheduler's messages).

    Raises TransientError (``broker_unreachable``) if Redis is unreachable.
    """
    app = _producer_app(broker_url)
    try:
        app.send_task(
            task,
            args=args,
            kwargs=kwargs,
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception as exc:
        raise TransientError(f"cannot send {task} to {queue}: {exc}", code="broker_unreachable") from exc
