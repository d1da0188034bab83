"""Undoing what a job made, whatever stopped it: failure, cancel, lost claim or lock, time limit.

:func:`undo` runs one cleanup action as a :meth:`~ceso.jobs.context.JobContext.cleanup_step`
(which checks nothing before it runs). While another error stops the job, that error stays
the job's cause: a cleanup that fails too (a host that stopped answering, say) is logged,
recorded on its step as ``pending: true`` and in the job's error details as
``pending_cleanup``, and not raised. :func:`always` runs a body and then its cleanup, on
every exit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ceso.errors import CesoError

if TYPE_CHECKING:
    from ceso.jobs.context import JobContext
    from ceso.plans import Step

__all__ = ["always", "pending_result", "undo"]

log = logging.getLogger(__name__)


def undo(
    ctx: JobContext,
    step: Step,
    action: Callable[[], object],
    *,
    cause: BaseException | None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Run ``action`` as the cleanup step ``step`` (declared in :mod:`ceso.plans` with ``cleanup=True``).

    ``cause`` is the error stopping the job, or None when the job is going
    well. With a cause, a failure of ``action`` is not raised: it is logged,
    marked pending on the step and added to the cause's details (a
    CesoError's ``pending_cleanup`` list), so the job fails with its cause and
    ``job status`` shows what is left to clean up. Without one it is raised.
    """
    try:
        with ctx.cleanup_step(step, details=details) as record:
            try:
                action()
            except Exception:
                if cause is not None:
                    record["pending"] = True
                raise
    except Exception as exc:
        if cause is None:
            raise
        message = exc.message if isinstance(exc, CesoError) else f"{type(exc).__name__}: {exc}"
        log.warning("job %s: cleanup step %r failed (%s); left pending", ctx.job.id, step.name, message)
        if isinstance(cause, CesoError):
            cause.details.setdefault("pending_cleanup", []).append({"step": step.name, "error": message})


@contextmanager
def always(
    ctx: JobContext, step: Step, action: Callable[[], object], *, details: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Run the body, then ``action`` as the cleanup step ``step`` on every exit (see :func:`undo`)."""
    try:
        yield
    except BaseException as exc:
        undo(ctx, step, action, cause=exc, details=details)
        raise
    undo(ctx, step, action, cause=None, details=details)


def pending_result(error: BaseException) -> dict[str, Any] | None:
    """The result a failed or cancelled job is recorded with: ``{"pending_cleanup": [step names]}``
    when cleanup steps were left pending by :func:`undo`, else None. A worker's recovery retries
    them (:func:`ceso.jobs.leftovers.retry_pending_cleanups`)."""
    pending = error.details.get("pending_cleanup") if isinstance(error, CesoError) else None
    return {"pending_cleanup": [p["step"] for p in pending]} if pending else None
