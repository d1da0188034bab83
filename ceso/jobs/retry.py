"""Transient host faults retried with backoff, for what a step may safely do again.

A connection cut for a few seconds should not fail a job. :func:`retry_host` runs one host
action again after a transient fault (connection lost or reset, session lost, an HTTP 5xx, the
host unreachable) with capped exponential backoff, for at most ``jobs.host_retry_s`` and never past
the job's soft time limit (less a margin for its cleanup). Only actions that are safe to repeat are
passed to it, in the steps :mod:`ceso.plans` declares ``retried``: reads, and writes made idempotent
by their caller (checking the job's marker or the host's state before asking again:
:func:`retry_checked`). Each failed try is recorded on the current step
(``retries``: the error's code and message, and the wait before the next try). Any other fault
(bad input, a conflict, a wrong password, a pinned certificate that does not match) is raised at
once, as before. When the time is up the last fault is raised as ``host_unreachable``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

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

__all__ = ["ReadResume", "is_transient_host_fault", "read_resume", "retry_checked", "retry_host"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The first wait, and the longest; each wait doubles the one before.
FIRST_WAIT_S = 0.5
MAX_WAIT_S = 5.0
#: Kept free before the soft time limit: the job's cleanup steps run in it.
CLEANUP_MARGIN_S = 30.0
#: How long a cut read resumes outside a job (no :func:`read_resume`): a ``datastore download``, say.
READ_RESUME_S = 10.0


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
    log and the final error). TypeError for a step :mod:`ceso.plans` does not declare ``retried``:
    what may be repeated is declared there, once.
    """
    if not step.retried:
        raise TypeError(f"step {step.name!r} is not declared retried (ceso.plans)")
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


class ReadResume:
    """How a host file read that was cut is resumed from the byte it reached (a read is safe to repeat).

    A data path (:class:`ceso.backup.datastore_http.RemoteFile`, :class:`ceso.ssh.stream.SshFileReader`)
    that loses its connection mid-file calls :meth:`reopen` with the cause and a function that asks the
    host again from the byte already consumed: that is tried with the backoff of :func:`retry_host`
    (0.5 s doubling to 5 s) for at most ``window_s`` per cut and never past ``ends_at`` (monotonic;
    the job's soft time limit less its cleanup margin). Non-transient faults are raised at once. Each
    failed try is kept (the shape of :func:`retry_host`'s records, plus ``at_byte``) until the job's
    thread :meth:`drain`s them onto its step: reads run on the backup pipeline's reader thread.
    """

    def __init__(
        self,
        window_s: float = READ_RESUME_S,
        *,
        ends_at: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window_s = window_s
        self.ends_at = ends_at
        self.resumes = 0
        self._sleep = sleep
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def reopen(self, what: str, at_byte: int, cause: CesoError, open_again: Callable[[], _T]) -> _T:
        """``open_again()`` after ``cause`` cut the read ``what`` at ``at_byte``; see the class.

        Raises ``cause`` itself if it is not transient, any non-transient error of ``open_again`` at
        once, and HostUnreachableError (chained to the last fault) once the window is spent.
        """
        if not is_transient_host_fault(cause):
            raise cause
        started = time.monotonic()
        deadline = started + self.window_s
        if self.ends_at is not None:
            deadline = min(deadline, self.ends_at)
        wait, tried, fault = FIRST_WAIT_S, 0, cause
        while True:
            tried += 1
            pause = min(wait, MAX_WAIT_S)
            if deadline - time.monotonic() < pause:
                self._keep(tried, fault, None, at_byte)
                raise HostUnreachableError(
                    f"{what}: cut at byte {at_byte} and not resumed within "
                    f"{max(0.0, time.monotonic() - started):.0f} s ({tried} tries): {fault.message}",
                    details={"tries": tried, "at_byte": at_byte},
                ) from fault
            self._keep(tried, fault, pause, at_byte)
            log.info("%s: cut at byte %d (%s); resuming in %.1f s", what, at_byte, fault.message, pause)
            self._sleep(pause)
            wait *= 2
            try:
                opened = open_again()
            except CesoError as exc:
                if not is_transient_host_fault(exc):
                    raise
                fault = exc
                continue
            with self._lock:
                self.resumes += 1
            log.info("%s: resumed at byte %d", what, at_byte)
            return opened

    def _keep(self, tried: int, exc: CesoError, wait_s: float | None, at_byte: int) -> None:
        record = {
            "try": tried,
            "code": exc.code,
            "message": exc.message,
            "wait_s": wait_s,
            "at_byte": at_byte,
        }
        with self._lock:
            self._records.append(record)

    def drain(self) -> list[dict[str, Any]]:
        """The records kept since the last call (for :meth:`ceso.jobs.steps.StepRecording.note_retry`)."""
        with self._lock:
            records, self._records = self._records, []
        return records


def read_resume(ctx: JobContext) -> ReadResume:
    """The :class:`ReadResume` of a job: ``jobs.host_retry_s`` per cut, within its soft time limit."""
    return ReadResume(
        ctx.runtime.settings.jobs.host_retry_s,
        ends_at=time.monotonic() + ctx.time_left_s() - CLEANUP_MARGIN_S,
    )


def retry_checked(
    ctx: JobContext,
    step: Step,
    act: Callable[[], object],
    *,
    done: Callable[[], bool],
    first_checks: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """:func:`retry_host` of a write made safe to repeat: ``act()`` on the first try; a later try
    first asks ``done()`` (a read of the host: is the effect there?) and asks nothing again if it
    is (``first_checks``: the first try too). Returns True if a try found the effect there (an
    earlier request was carried out and its answer lost), False if ``act`` ended well."""

    def action(tried: int) -> bool:
        if (tried > 1 or first_checks) and done():
            return True
        act()
        return False

    return retry_host(ctx, step, action, sleep=sleep)
