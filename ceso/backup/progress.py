"""Progress of a byte stream in a job row: bytes, rate, ETA — written at most once a second.

Each report is also the job's cancel point: :meth:`JobContext.set_progress`
is fenced on the claim, then the job's cancel flag and any extra lease (a
target's semaphore slot) are checked, so a cancelled or orphaned copy stops
within about a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ceso.jobs.task_progress import byte_details

if TYPE_CHECKING:
    from ceso.jobs.context import JobContext

__all__ = ["ByteProgress"]


class ByteProgress:
    """Maps bytes done out of ``total`` onto the job's percent range ``start``-``end``."""

    def __init__(
        self,
        ctx: JobContext,
        total: int,
        *,
        start: int,
        end: int,
        checks: tuple[Callable[[], None], ...] = (),
        interval_s: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.total = max(total, 1)
        self.start, self.end = start, end
        self.done = 0
        self._checks = checks
        self._interval = interval_s
        self._t0 = time.monotonic()
        self._last = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self.report(now)

    def report(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        percent = self.start + (self.end - self.start) * min(self.done, self.total) // self.total
        self.ctx.set_progress(percent, **byte_details(self.done, self.total, now - self._t0))
        self.ctx.checkpoint()
        for check in self._checks:
            check()
