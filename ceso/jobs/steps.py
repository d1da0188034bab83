"""Recording a running job's steps: :class:`StepRecording`, the half of
:class:`ceso.jobs.context.JobContext` that handlers use most.

A step is declared once in :mod:`ceso.plans` and run here: ``ctx.step(STEP)`` checks whether the
job must stop, writes the step's start before its body asks anything of the host, and records
its end, outcome, duration and the host calls made (``record_call``); ``ctx.cleanup_step(STEP)``
does the same for a step that undoes what the job made, checking nothing and never raising for
its own bookkeeping; ``ctx.recovery_step(STEP)`` records a read made while the job is already
stopping, and ``note_retry`` a failed try of a host call tried again. How the row is written (fenced on the claim, deferred ends, audit records)
is the context's: :meth:`StepRecording._before_step`, ``_write``, ``_defer`` and
``_append_alone`` are its.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ceso.audit.jobs import step_event
from ceso.db.types import utcnow
from ceso.errors import CesoError
from ceso.jobs.store import ClaimLostError
from ceso.security.redact import redact

if TYPE_CHECKING:
    from ceso.audit.store import AuditEvent
    from ceso.db.models import Job
    from ceso.plans import Step

__all__ = ["StepRecording"]

log = logging.getLogger(__name__)


class StepRecording:
    """Steps of a claimed job, recorded in its row; the row's writes are the subclass's."""

    job: Job
    steps: list[dict[str, Any]]
    #: The route (api|ssh) the job's backend took; recorded on every step after the choice.
    route: str | None
    _current: dict[str, Any] | None

    def take_route(self, route: str) -> None:
        """Record ``route`` (api|ssh), the one the job's backend took, on the step running now and
        on every later step: a step that opens the backend is still said to be on its route."""
        self.route = route
        if self._current is not None:
            self._current.setdefault("route", route)

    def _before_step(self) -> None:
        """Raise if the job must stop before a step (cancel, lost claim or lock)."""
        raise NotImplementedError

    def _write(self, audit: AuditEvent | None = None, **values: Any) -> None:
        """Write ``values`` to the row now, with the deferred ends of earlier steps and ``audit``."""
        raise NotImplementedError

    def _defer(self, audit: AuditEvent, **values: Any) -> None:
        """Keep ``values`` and ``audit`` for the next write of the row."""
        raise NotImplementedError

    def _append_alone(self, audits: list[AuditEvent]) -> None:
        """Append records whose row write failed, each on its own."""
        raise NotImplementedError

    @contextmanager
    def step(
        self,
        step: Step,
        *,
        item: str | None = None,
        progress: int | None = None,
        changes_host: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Record one step, declared in :mod:`ceso.plans` (the dry run shows the same): checks cancel
        first, then logs start, end, outcome and duration. ``item`` names the round of an ``each``
        step (``copy disk 1/2``).

        ``details`` (and whatever the body adds to the yielded dict, such as
        the exact vSphere calls made) are stored with the step; pass no secret.
        They are a mapping, not keywords: a misspelt option is a TypeError, not a detail.

        A step's start is written (and committed) before its body runs, so the
        record of what the host is asked to do always precedes the asking.
        ``changes_host=False`` is for a step that only reads: its start is not
        written on its own, and the whole record, start and end, is written
        with the next write of the row (a failure at once), one commit less.

        Raises JobCancelledError, ClaimLostError or LockLostError before the
        body when the job must stop; an undoing step uses :meth:`cleanup_step`.
        """
        if step.cleanup:
            raise TypeError(f"step {step.name!r} undoes what the job made: run it with cleanup_step")
        name = step.label(item)
        self._before_step()
        with self._recorded(name, progress, changes_host, details, cleanup=False) as record:
            yield record

    @contextmanager
    def cleanup_step(
        self, step: Step, *, details: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """A step that undoes what the job made: it runs on failure, cancel, lost claim or lock and
        time limit alike.

        Unlike :meth:`step` it checks nothing before its body, and writing its
        record never raises (a failed write is logged; the record is kept in
        memory and written with the outcome). The body's own error is raised.
        The step is recorded with ``cleanup: true``; it is declared with ``cleanup=True``.
        """
        if not step.cleanup:
            raise TypeError(f"step {step.name!r} is not declared as a cleanup step")
        name = step.label()
        with self._recorded(name, None, True, {**(details or {}), "cleanup": True}, cleanup=True) as record:
            yield record

    @contextmanager
    def recovery_step(
        self, step: Step, *, details: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """A step that only reads, run while the job is already stopping (e.g. reading the host back
        before a fault is recorded as the job's failure): like :meth:`cleanup_step` it checks nothing
        before its body and writing its record never raises, but it is not marked ``cleanup``."""
        if step.cleanup:
            raise TypeError(f"step {step.name!r} undoes what the job made: run it with cleanup_step")
        with self._recorded(step.label(), None, False, details, cleanup=True) as record:
            yield record

    @contextmanager
    def _recorded(
        self,
        name: str,
        progress: int | None,
        changes_host: bool,
        details: Mapping[str, Any] | None,
        *,
        cleanup: bool,
    ) -> Iterator[dict[str, Any]]:
        """The record of one step around its body (see :meth:`step`); ``cleanup`` makes the writes
        best effort (:meth:`cleanup_step`)."""
        record: dict[str, Any] = {
            "name": name,
            "state": "running",
            "started_at": utcnow().isoformat(),
            **(details or {}),
        }
        if self.route is not None:
            record.setdefault("route", self.route)
        index = len(self.steps)
        self.steps.append(record)
        if changes_host:
            # Ended records are kept redacted (below), so only this one needs it: the whole list was
            # redacted again at every write, most of a step's bookkeeping on a long job.
            self._guarded(
                name,
                lost_ok=cleanup,
                any_ok=cleanup,
                current_step=name,
                steps=[*self.steps[:index], redact(record)],
            )
        start = time.monotonic()
        self._current = record
        try:
            yield record
        except BaseException as exc:
            record["state"] = "failed"
            record["error"] = (
                redact(exc.to_dict()) if isinstance(exc, CesoError) else {"code": type(exc).__name__}
            )
            raise
        else:
            record["state"] = "succeeded"
        finally:
            self._current = None
            record["duration_s"] = round(time.monotonic() - start, 4)
            self.steps[index] = redact(record)  # the caller's dict stays as it made it
            values: dict[str, Any] = {"steps": list(self.steps)}
            event = step_event(self.job, self.steps[index])
            if record["state"] == "succeeded":
                if progress is not None:
                    values["progress"] = progress
                self._defer(event, **values)  # written with the next write of the row
            else:
                self._guarded(name, lost_ok=True, any_ok=cleanup, audit=event, **values)  # a failure: at once

    def _guarded(
        self, name: str, *, lost_ok: bool, any_ok: bool, audit: AuditEvent | None = None, **values: Any
    ) -> None:
        """:meth:`_write`, logging instead of raising a lost claim (``lost_ok``; the records were then
        appended on their own) or any other failure to write (``any_ok``, a cleanup step's)."""
        try:
            self._write(audit=audit, **values)
        except ClaimLostError:
            if not lost_ok:
                raise
            log.warning("job %s lost its claim while recording step %s", self.job.id, name)
        except Exception:
            if not any_ok:
                raise
            log.warning("job %s: recording step %s failed", self.job.id, name, exc_info=True)
            if audit is not None:
                self._append_alone([audit])

    def record_call(self, method: str, args: dict[str, Any]) -> None:
        """Note one call made to the host (vSphere method or shell command) on the current step.

        ``args`` must hold no secret; it is stored in SQL and shown by ``job status``.
        """
        if self._current is not None:
            self._current.setdefault("calls", []).append({"method": method, "args": redact(args)})

    def note_retry(self, attempt: Mapping[str, Any]) -> None:
        """Note one failed try of a host action that will be (or was last) tried again, on the current
        step's ``retries`` (:func:`ceso.jobs.retry.retry_host`); pass no secret."""
        if self._current is not None:
            self._current.setdefault("retries", []).append(redact(dict(attempt)))
