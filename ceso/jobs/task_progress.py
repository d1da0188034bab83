"""Progress in a job row: a vSphere task's (a disk copy) own percent, mapped onto a step's share of
the job's percent, with an ETA from the rate so far; and the one shape of a byte stream's progress
(:func:`byte_details`), which backups, restores and template imports all write.

vSphere tasks report ``info.progress`` (0-100, or unset while the host has not estimated it);
:meth:`ceso.esxi.client.EsxiClient.wait_task` passes each new value here. A host that never sets
it leaves the job where the step started, as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ceso.jobs.context import JobContext

__all__ = ["TaskProgress", "byte_details", "job_percent"]


def byte_details(done: int, total: int | None, elapsed_s: float) -> dict[str, Any]:
    """A step's progress through a byte stream, as ``ceso job show``, ``--json`` and cesod give it:
    ``bytes_done``, ``bytes_total`` (None while unknown), ``rate_mib_s`` (MiB/s so far, one decimal)
    and ``eta_s`` (seconds left at that rate; None while the total is unknown or nothing moved)."""
    rate = done / max(elapsed_s, 1e-6)
    eta = round(max(0, total - done) / rate) if total and rate > 0 else None
    return {"bytes_done": done, "bytes_total": total, "rate_mib_s": round(rate / 2**20, 1), "eta_s": eta}


def job_percent(task_percent: int, *, start: int, end: int) -> int:
    """The job's percent for a task at ``task_percent`` that spans ``start``-``end`` of the job.

    Values outside 0-100 (a host's glitch) are clamped; the result never leaves ``start``-``end``."""
    clamped = max(0, min(100, int(task_percent)))
    return start + (end - start) * clamped // 100


class TaskProgress:
    """A callback for a task's percent: writes the job's progress and, on the current step,
    ``task_percent`` and ``eta_s`` (None until the task has moved). Not a cancel point: the host's
    task would go on copying after ceso stopped waiting for it, so a cancel waits for the step's end."""

    def __init__(self, ctx: JobContext, *, start: int, end: int) -> None:
        self.ctx = ctx
        self.start, self.end = start, end
        self._t0 = time.monotonic()
        self._last: int | None = None

    def __call__(self, task_percent: int) -> None:
        percent = max(0, min(100, int(task_percent)))
        if percent == self._last:
            return
        self._last = percent
        elapsed = time.monotonic() - self._t0
        eta = round(elapsed * (100 - percent) / percent) if percent > 0 else None
        self.ctx.set_progress(
            job_percent(percent, start=self.start, end=self.end), task_percent=percent, eta_s=eta
        )
