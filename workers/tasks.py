"""The one Celery task: run a job by id. All logic lives in ceso.jobs.runner."""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

from ceso.constants import RUN_JOB_TASK
from ceso.jobs.runner import Delivery, run_job
from ceso.runtime import get_runtime
from workers.app import app
from workers.memory import release_free_memory


@app.task(name=RUN_JOB_TASK, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
def run_job_task(self: Any, job_id: str) -> None:
    """Run job ``job_id``; if another live delivery holds it, or SQL is unreachable, look again later."""
    runtime = get_runtime()
    try:
        outcome = run_job(runtime, job_id, time_limit_exceptions=(SoftTimeLimitExceeded,))
    finally:
        release_free_memory()  # the next job's peak starts from the child's baseline, not this job's leftovers
    if outcome is Delivery.RETRY:
        # SQL was unreachable: acknowledging would lose the job (its row says queued, nothing would
        # deliver it). A retry is a new message, published before this one is acknowledged.
        raise self.retry(
            countdown=runtime.settings.jobs.relay_interval_s,
            queue=self.request.delivery_info.get("routing_key"),
        )
    if outcome is Delivery.BUSY:
        # Either a duplicate of a running job or a redelivery after a crash whose
        # heartbeat is not stale yet: come back once it would be.
        raise self.retry(
            countdown=runtime.settings.jobs.stale_after_s, queue=self.request.delivery_info.get("routing_key")
        )


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_recovery(sender: Any = None, **_: Any) -> None:
    """Keep publishing jobs of this worker's hosts that never reached the queue or whose worker died."""
    from workers.recovery import start_probe_thread, start_recovery_thread

    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()] if sender else []
    start_recovery_thread(queues)
    start_probe_thread(queues)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _forget_parent_connections(**_: Any) -> None:
    """A prefork child must not reuse the parent's database or ESXi connections.

    Their sockets are shared after fork(); two processes talking over one
    PostgreSQL connection corrupt its protocol state. The pools are dropped
    without closing (closing would also close the parent's sockets).
    """
    from ceso.db.engine import get_engine
    from ceso.settings import get_settings

    for engine in _cached_engines(get_engine):
        engine.dispose(close=False)
    get_engine.cache_clear()
    get_runtime.cache_clear()
    get_settings.cache_clear()


def _cached_engines(factory: Any) -> list[Any]:
    from ceso.settings import get_settings

    if not factory.cache_info().currsize:
        return []
    return [factory(get_settings().database_url)]


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _mark_child_dead(pid: int | None = None, **_: Any) -> None:
    """Stop counting a finished child's live gauges in the aggregate."""
    import os

    from ceso.metrics.server import mark_child_dead

    mark_child_dead(pid or os.getpid())
