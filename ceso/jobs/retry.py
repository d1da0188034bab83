"""Transient host faults retried with backoff, for what a step may safely do again.

A connection cut for a few seconds should not fail a job. :func:`retry_host` runs one host
action again after a transient fault (connection lost or reset, session lost, an HTTP 5xx, the
host unreachable) with capped exponential backoff, for at most ``jobs.host_retry_s`` and never past
the job's soft time limit (less a margin for its cleanup). Only actions that are safe to repeat are
passed to it: reads, and writes made idempotent by their caller (checking the job's marker or the
host's state before asking again). Each failed try is recorded on the current step
(``retries``: the error's code and message, and the wait before the next try). Any other fault
(bad input, a conflict, a wrong password, a pinned certificate that does not match) is raised at
once, as before. When the time is up the last fault is raised as ``host_unreachable``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ceso.errors import (
    AuthenticationError,
    CesoError,
    HostUnreachableError,
    ThumbprintMismatchError,
    TransientError,
)

if TYPE_CHECKING:
    from ceso.jobs.context import JobContext
    from ceso.plans import Step

__all__ = ["is_transient_host_fault", "retry_host"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The first wait, and the longest; each wait doubles the one before.
FIRST_WAIT_S = 0.5
MAX_WAIT_S = 5.0
#: Kept free before the soft time limit: the job's cleanup steps run in it.
CLEANUP_MARGIN_S = 30.0


def is_transient_host_fault(exc: BaseException) -> bool:
    """True for a fault of the way to the host that may pass: not a refusal, not a bad credential."""
    if isinstance(exc, (AuthenticationError, ThumbprintMismatchError)):
        return False
    return isinstance(exc, (TransientError, HostUnreachableError))


def retry_host(
    ctx: JobContext,
    step: Step,
    action: Callable[[int], _T],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """``action(try_number)`` (1, 2, ...), tried again after a transient host fault (see the module).

    ``action`` learns from ``try_number`` > 1 that an earlier try may have reached the host, and
    checks before asking again. Raises the action's non-transient errors at once, and
    HostUnreachableError (chained to the last fault) once ``jobs.host_retry_s`` or the job's time
    is spent. Retries are recorded on the current step of ``ctx``, which is ``step`` (named in the
    log and the final error).
    """
    budget = min(ctx.runtime.settings.jobs.host_retry_s, ctx.time_left_s() - CLEANUP_MARGIN_S)
    if budget <= 0:
        return action(1)
    deadline = time.monotonic() + budget
    wait = FIRST_WAIT_S
    tried = 0
    while True:
        tried += 1
        try:
            return action(tried)
        except CesoError as exc:
            if not is_transient_host_fault(exc):
                raise
            pause = min(wait, MAX_WAIT_S)
            if deadline - time.monotonic() < pause:
                ctx.note_retry({"try": tried, "code": exc.code, "message": exc.message, "wait_s": None})
                raise HostUnreachableError(
                    f"{step.name} on host {ctx.job.host}: the host did not answer for {tried} tries "
                    f"over {budget:.0f} s: {exc.message}",
                    details={"tries": tried},
                ) from exc
            ctx.note_retry({"try": tried, "code": exc.code, "message": exc.message, "wait_s": pause})
            log.info("job %s: %s: %s; trying again in %.1f s", ctx.job.id, step.name, exc.message, pause)
            sleep(pause)
            wait *= 2
