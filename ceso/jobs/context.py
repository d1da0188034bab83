"""What a running job's handler sees: its row, its steps, progress, cancel, the host.

Every write goes through :func:`ceso.jobs.store.update_running`, fenced on the
claim; a handler that lost its claim or was asked to cancel stops at the next
``step()`` boundary with ClaimLostError or JobCancelledError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ceso.db.models import Job
from ceso.db.types import utcnow
from ceso.errors import CesoError, JobCancelledError
from ceso.jobs.store import ClaimLostError, update_running

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient
    from ceso.runtime import Runtime

__all__ = ["JobContext"]

log = logging.getLogger(__name__)


class JobContext:
    """A claimed job while it runs. Not shared between threads except the heartbeat."""

    def __init__(self, runtime: Runtime, job: Job) -> None:
        self.runtime = runtime
        self.job = job
        self.attempt = job.attempts
        self.steps: list[dict[str, Any]] = list(job.steps or [])
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    # -- heartbeat ---------------------------------------------------------
    def start_heartbeat(self) -> None:
        """Refresh ``heartbeat_at`` every ``jobs.heartbeat_s`` and pick up cancel requests."""
        interval = self.runtime.settings.jobs.heartbeat_s

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    row = update_running(
                        self.runtime.engine, job_id=self.job.id, attempt=self.attempt, heartbeat_at=utcnow()
                    )
                except ClaimLostError:
                    self._lost.set()
                    return
                except Exception:  # bookkeeping never breaks a job; try again next beat
                    log.warning("heartbeat of job %s failed", self.job.id, exc_info=True)
                    continue
                if row.cancel_requested:
                    self._cancel.set()

        self._heartbeat = threading.Thread(target=beat, name=f"heartbeat-{self.job.id[:8]}", daemon=True)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)

    # -- checks ------------------------------------------------------------
    def checkpoint(self) -> None:
        """Raise JobCancelledError or ClaimLostError if the job must stop now."""
        if self._lost.is_set():
            raise ClaimLostError(f"job {self.job.id} lost its claim")
        row = self._write()
        if row.cancel_requested or self._cancel.is_set():
            raise JobCancelledError(f"job {self.job.id} was cancelled")

    def _write(self, **values: Any) -> Job:
        try:
            row = update_running(
                self.runtime.engine, job_id=self.job.id, attempt=self.attempt, heartbeat_at=utcnow(), **values
            )
        except ClaimLostError:
            self._lost.set()
            raise
        self.job = row
        return row

    # -- steps ---------------------------------------------------------------
    @contextmanager
    def step(self, name: str, *, progress: int | None = None, **details: Any) -> Iterator[dict[str, Any]]:
        """Record one step: checks cancel first, then logs start, end, outcome and duration.

        ``details`` (and whatever the body adds to the yielded dict, such as
        the exact vSphere calls made) are stored with the step; pass no secret.
        """
        self.checkpoint()
        record: dict[str, Any] = {
            "name": name,
            "state": "running",
            "started_at": utcnow().isoformat(),
            **details,
        }
        self.steps.append(record)
        self._write(current_step=name, steps=list(self.steps))
        start = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            record["state"] = "failed"
            record["error"] = exc.to_dict() if isinstance(exc, CesoError) else {"code": type(exc).__name__}
            raise
        else:
            record["state"] = "succeeded"
        finally:
            record["duration_s"] = round(time.monotonic() - start, 4)
            values: dict[str, Any] = {"steps": list(self.steps)}
            if progress is not None and record["state"] == "succeeded":
                values["progress"] = progress
            try:
                self._write(**values)
            except ClaimLostError:
                log.warning("job %s lost its claim while recording step %s", self.job.id, name)

    def set_progress(self, percent: int) -> None:
        self._write(progress=max(0, min(100, int(percent))))

    # -- host ------------------------------------------------------------------
    def client(self) -> EsxiClient:
        """The pooled vSphere session of the job's host."""
        from ceso.hosts.registry import client_for

        return client_for(self.runtime, self.job.host)
