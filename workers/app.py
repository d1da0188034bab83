"""The Celery application for ceso workers.

Every job goes through one task (``ceso.run_job``) on the queue of its host
(``esxi.<host>``). Reliability settings, and why:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a job whose worker
  dies is delivered again; the attempt cap in SQL stops a poison job.
- ``worker_prefetch_multiplier=1``: a long job never holds others hostage.
- ``visibility_timeout`` above the hard time limit: Redis does not hand a
  running job to a second worker while the first is still within its limit.
- soft/hard time limits per task; the soft one lets the job clean up.
- no result backend: SQL is the record of every job.
- our own consumer (:mod:`workers.consumer`): a broker lost while a message is unacknowledged
  is reconnected to, not taken for an unrecoverable error.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from ceso.settings import get_settings

__all__ = ["app", "make_app", "run_worker"]


def make_app() -> Any:
    settings = get_settings()
    jobs = settings.jobs
    celery_app = Celery(
        "ceso", broker=settings.redis_url, include=["workers.tasks", "workers.schedule_tasks"]
    )
    celery_app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_soft_time_limit=jobs.soft_time_limit_s,
        task_time_limit=jobs.hard_time_limit_s,
        broker_transport_options={"visibility_timeout": jobs.hard_time_limit_s + 300},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_consumer="workers.consumer:Consumer",
        task_default_queue="ceso.default",
        timezone="UTC",
    )
    return celery_app


app = make_app()


def run_worker(*, queues: list[str], concurrency: int, loglevel: str, hostname: str) -> int:
    """Consume ``queues`` with a prefork worker until it is stopped; return its exit code.

    Builds ``app.Worker`` as ``celery worker`` would, not through ``app.worker_main``:
    Celery's command line first imports every ``celery.commands`` plugin (Flower, with
    tornado) and click-repl (prompt_toolkit, pygments), memory in the main process that
    every prefork child inherits, for nothing a ceso worker uses.
    """
    from celery.utils.log import mlevel

    worker = app.Worker(
        hostname=hostname,
        queues=queues,
        concurrency=concurrency,
        loglevel=mlevel(loglevel.upper()),
        without_mingle=True,
        without_gossip=True,
        no_color=bool(os.environ.get("NO_COLOR")),  # as celery's --no-color reads it
    )
    worker.start()
    return int(worker.exitcode or 0)
