"""What a running job's handler sees: its row, its steps (:mod:`ceso.jobs.steps`), progress,
cancel, locks, the host.

Every write goes through :func:`ceso.jobs.store.update_running`, fenced on the
claim; a handler that lost its claim or was asked to cancel stops at the next
``step()`` boundary with ClaimLostError or JobCancelledError.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ceso.audit.store import AuditEvent, record
from ceso.db.models import Job
from ceso.db.types import utcnow
from ceso.errors import CesoError, JobCancelledError
from ceso.jobs.notify import notify_job
from ceso.jobs.steps import StepRecording
from ceso.jobs.store import ClaimLostError, finish_running, update_running
from ceso.metrics.record import observe_lock_wait

if TYPE_CHECKING:
    from ceso.backends.api import ApiVmBackend
    from ceso.backends.protocol import AnyBackend
    from ceso.esxi.client import EsxiClient
    from ceso.locks import Lease
    from ceso.plans import Step
    from ceso.runtime import Runtime

__all__ = ["JobContext"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: A row this run wrote less than this long ago still answers "was the job cancelled?".
_FRESH_S = 0.05


class JobContext(StepRecording):
    """A claimed job while it runs. Not shared between threads except the heartbeat."""

    def __init__(self, runtime: Runtime, job: Job, *, claimed_at: float | None = None) -> None:
        """``claimed_at``: the monotonic time just before the claim that returned ``job``. The claim
        is a fenced write that found no cancel request, so it counts as this run's first write: the
        check before the first step needs no write of its own when it comes within ``_FRESH_S``."""
        self.runtime = runtime
        self.job = job
        self.attempt = job.attempts
        self.steps: list[dict[str, Any]] = list(job.steps or [])
        #: The steps of this job's earlier attempts (what they made, or were making, when they ended).
        self.earlier_steps: tuple[dict[str, Any], ...] = tuple(self.steps)
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._current: dict[str, Any] | None = None
        self._leases: list[Lease] = []
        self._params: dict[str, Any] | None = None
        # The route (api|ssh) chosen by backend(); recorded on every step after the choice.
        self.route: str | None = None
        # Monotonic time of this run's last write of the row (each returns the cancel flag).
        self._written_at = float("-inf") if claimed_at is None else claimed_at
        # A step that ends well is written with the next write of the row (the next step's start,
        # the cancel check, or the heartbeat's next beat), in the same transaction: one commit
        # instead of two between steps, and the record still precedes the next step's calls.
        self._deferred: dict[str, Any] = {}
        self._deferred_audits: list[AuditEvent] = []
        self._write_lock = threading.Lock()  # this thread's writes and the heartbeat's flush
        self._began = time.monotonic() if claimed_at is None else claimed_at
        # Set by beyond_cancel(): a cancel found by finish() is too late (the work stays done).
        self._too_late_to_cancel = False

    @property
    def params(self) -> dict[str, Any]:
        """The job's params with sealed secrets opened (in memory only; SQL keeps the references)."""
        if self._params is None:
            from ceso.security.sealing import unseal_params

            self._params = unseal_params(self.runtime, self.job.params)
        return self._params

    # -- heartbeat ---------------------------------------------------------
    def start_heartbeat(self) -> None:
        """Refresh ``heartbeat_at`` every ``jobs.heartbeat_s`` and pick up cancel requests."""
        interval = self.runtime.settings.jobs.heartbeat_s

        def beat() -> None:
            while not self._stop.wait(interval):
                if self._deferred_audits:
                    self.flush()  # a step ended a beat ago and nothing has written since
                    continue
                try:
                    cancel = update_running(
                        self.runtime.engine, job_id=self.job.id, attempt=self.attempt, heartbeat_at=utcnow()
                    )
                except ClaimLostError:
                    self._lost.set()
                    return
                except Exception:  # bookkeeping never breaks a job; try again next beat
                    log.warning("heartbeat of job %s failed", self.job.id, exc_info=True)
                    continue
                if cancel:
                    self._cancel.set()

        # In a copy of this context: the bound caller (actor and mode) and the job id go with the beat,
        # so the step records it flushes are audited as the steps it did not flush (a new thread
        # starts with an empty context).
        self._heartbeat = threading.Thread(
            target=contextvars.copy_context().run,
            args=(beat,),
            name=f"heartbeat-{self.job.id[:8]}",
            daemon=True,
        )
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)

    # -- checks ------------------------------------------------------------
    def checkpoint(self, *, fresh_within_s: float = 0.0) -> None:
        """Raise JobCancelledError, ClaimLostError or LockLostError if the job must stop now.

        Reads the cancel flag with a fenced write, unless this run wrote the row
        less than ``fresh_within_s`` ago: that write returned the flag already
        (a step starting right after the previous one ended needs no third write).
        """
        self._check_held()
        fresh = time.monotonic() - self._written_at < fresh_within_s
        if not fresh:
            self._write()
        if self._cancel.is_set():
            raise JobCancelledError(f"job {self.job.id} was cancelled")

    def _before_step(self) -> None:
        self.checkpoint(fresh_within_s=_FRESH_S)

    def _check_held(self) -> None:
        """ClaimLostError if the heartbeat saw another delivery take the job; LockLostError if a lease
        lapsed."""
        if self._lost.is_set():
            raise ClaimLostError(f"job {self.job.id} lost its claim")
        for lease in self._leases:
            lease.check()

    def beyond_cancel(self) -> None:
        """Say that the job's work is complete on the host and nothing will undo it: called after the
        handler's last :meth:`checkpoint` (whose cancel would still undo it). A cancel requested
        from then on is too late, and :meth:`finish` records the job ``succeeded`` with
        ``cancel_too_late`` in its result rather than ``cancelled`` over work left on the host."""
        self._too_late_to_cancel = True

    def finish(self, result: dict[str, Any]) -> str:
        """Record the handler's ``result`` as the job's outcome; return it (``succeeded`` or ``cancelled``).

        One transaction (:func:`ceso.jobs.store.finish_running`): the deferred
        ends of the last steps with their audit records, then the outcome with
        its record. It is the final checkpoint too: ClaimLostError or
        LockLostError as :meth:`checkpoint` raises them, and the outcome is
        ``cancelled`` (error ``job_cancelled``) if a cancel was requested
        before this write, even while the last step ran (unless :meth:`beyond_cancel` was said:
        then ``succeeded``, ``cancel_too_late``). On ClaimLostError the
        step records are appended on their own, as :meth:`_write` does.
        The heartbeat is stopped first: no beat races the outcome.
        """
        self.stop_heartbeat()
        self._check_held()
        # The flag the write reads is never cleared, so it also covers a cancel the heartbeat saw.
        finish = functools.partial(
            finish_running,
            result=result,
            cancelled=JobCancelledError(f"job {self.job.id} was cancelled"),
            too_late_to_cancel=self._too_late_to_cancel,
        )
        state: str = self._fenced(finish, None, {})
        if state == "cancelled":
            self._cancel.set()
        self._written_at = time.monotonic()
        return state

    def _write(self, audit: AuditEvent | None = None, **values: Any) -> None:
        """Write ``values`` (after the deferred ends of earlier steps) to the row, fenced, with their
        audit records and ``audit`` in one transaction; a cancel request the write returns is remembered.

        On ClaimLostError the records are appended on their own (guarded) before it is raised: what the
        host was asked to do is audited even when this run may no longer write the row.
        """
        if self._fenced(update_running, audit, values):
            self._cancel.set()
        self._written_at = time.monotonic()  # after the flag: a fresh write's answer is already in it
        notify_job(self.runtime, self.job.id)

    def _fenced(self, write: Callable[..., _T], audit: AuditEvent | None, values: dict[str, Any]) -> _T:
        """``write(engine, job_id=, attempt=, audits=, **values)`` of :meth:`_write`, with the deferred
        ends of earlier steps and their records; on ClaimLostError those are appended on their own."""
        with self._write_lock:
            audits = [*self._deferred_audits, *([audit] if audit is not None else [])]
            try:
                out = write(
                    self.runtime.engine,
                    job_id=self.job.id,
                    attempt=self.attempt,
                    audits=audits,
                    **{**self._deferred, **values, "heartbeat_at": utcnow()},
                )
            except ClaimLostError:
                self._lost.set()
                self._deferred, self._deferred_audits = {}, []
                self._append_alone(audits)
                raise
            self._deferred, self._deferred_audits = {}, []
        return out

    def _defer(self, audit: AuditEvent, **values: Any) -> None:
        with self._write_lock:
            self._deferred.update(values)
            self._deferred_audits.append(audit)

    def flush(self) -> None:
        """Write what ended steps deferred, now (before the job's outcome is recorded). Never raises:
        if the write fails, the records are appended on their own and the failure logged."""
        if not self._deferred_audits:
            return
        try:
            self._write()
        except ClaimLostError:
            log.warning("job %s lost its claim before its last steps were recorded", self.job.id)
        except Exception:
            log.warning("job %s: recording its last steps failed", self.job.id, exc_info=True)
            with self._write_lock:
                audits, self._deferred, self._deferred_audits = self._deferred_audits, {}, []
            self._append_alone(audits)

    def _append_alone(self, audits: list[AuditEvent]) -> None:
        """Append records whose row write failed, each on its own (guarded: never breaks the job)."""
        for event in audits:
            record(self.runtime.engine, event)

    @contextmanager
    def locks(self, step: Step, *, vms: Sequence[str] = (), datastores: Sequence[str] = ()) -> Iterator[None]:
        """Hold the VM locks (exclusive) and a slot of each datastore (shared, limited) for the body,
        acquired as ``step`` (the kind's ``lock`` step).

        Waits up to ``locks.wait_s`` (LockedError after that); the leases are
        renewed in the background and checked at every step; they are always
        released on exit. The fencing tokens are recorded on the step.
        """
        from ceso.locks import datastore_lock_name, vm_lock_name

        settings = self.runtime.settings.locks
        manager = self.runtime.locks
        host = self.job.host
        details = {"vms": sorted(set(vms)), "datastores": sorted(set(datastores))}
        with self.step(step, details=details) as record:
            leases: list[Lease] = []
            try:
                if vms:
                    leases.append(
                        manager.acquire(
                            [vm_lock_name(host, v) for v in sorted(set(vms))],
                            holder=self.job.id,
                            wait_s=settings.wait_s,
                        )
                    )
                for ds in sorted(set(datastores)):
                    leases.append(
                        manager.semaphore(
                            datastore_lock_name(host, ds),
                            settings.datastore_concurrency,
                            holder=self.job.id,
                            wait_s=settings.wait_s,
                        )
                    )
            except BaseException:
                for lease in leases:
                    lease.release()
                raise
            for lease in leases:
                lease.start_renewal()
            record["fencing_tokens"] = {n: t for lease in leases for n, t in lease.tokens.items()}
            record["waited_s"] = round(sum(lease.waited_s for lease in leases), 3)
            observe_lock_wait(self.job.kind, self.job.host, record["waited_s"])
        self._leases.extend(leases)
        try:
            yield
        finally:
            for lease in leases:
                self._leases.remove(lease)
                try:
                    lease.release()
                except CesoError as exc:
                    # Redis unreachable: the lease expires within its TTL. Failing a job whose work
                    # is done (or hiding the body's own error) would be worse than a lingering lock.
                    log.warning("job %s: could not release %s: %s", self.job.id, lease, exc.message)

    def time_left_s(self) -> float:
        """Seconds until the job's soft time limit (counted from this run's claim)."""
        limit = self.runtime.settings.jobs.soft_time_limit_s
        return limit - (time.monotonic() - self._began)

    def set_progress(self, percent: int, **details: Any) -> None:
        """Write the job's progress; ``details`` (e.g. bytes, rate, ETA) go on the current step.

        Raises ClaimLostError if the claim was lost; pass no secret in ``details``.
        """
        values: dict[str, Any] = {"progress": max(0, min(100, int(percent)))}
        if details and self._current is not None:
            self._current.update(details)
            values["steps"] = list(self.steps)
        self._write(**values)

    # -- host ------------------------------------------------------------------
    @overload
    def backend(self, *, require: None = None, what: str = "") -> AnyBackend: ...
    @overload
    def backend(self, *, require: Literal["api"], what: str) -> ApiVmBackend: ...
    def backend(self, *, require: Literal["api"] | None = None, what: str = "") -> AnyBackend:
        """The VM operations on the job's host, by the route its record declares; each call is
        recorded on the current step, and the route on every later step.

        ``require="api"`` is for a job that runs only through the vSphere API
        (``what`` names it): on a host that takes SSH it is refused with
        NotPermittedError (``needs_api_route``) before anything is asked of the
        host. See :func:`ceso.backends.routes.open_backend`.
        """
        from ceso.backends.routes import open_backend

        if require is None:
            return open_backend(self, what=what)
        return open_backend(self, require=require, what=what)

    def client(self) -> EsxiClient:
        """The pooled vSphere session of the job's host."""
        from ceso.hosts.registry import client_for

        return client_for(self.runtime, self.job.host)
