"""A held lock (or semaphore slot): its fencing tokens, renewal, loss detection, release.

:class:`Grant` is what Redis gave one holder; :class:`Lease` keeps it alive
through the public :meth:`LockManager.renew` and :meth:`LockManager.release`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from ceso.errors import CesoError

if TYPE_CHECKING:
    from ceso.locks.manager import LockManager

__all__ = ["Grant", "Lease", "LockLostError"]

log = logging.getLogger(__name__)

LeaseKind = Literal["lock", "semaphore"]


class LockLostError(CesoError):
    """A lease expired or was taken by another holder; the job must stop and clean up."""

    code = "lock_lost"


@dataclass(frozen=True)
class Grant:
    """Locks (or one semaphore slot) that Redis granted one holder in one acquisition.

    ``values`` are what the keys hold for this holder (``<token>:<holder>``, in
    the order of ``names``): renewal and release touch a key only while it
    still holds its value, so they never extend or delete another holder's lock.
    """

    kind: LeaseKind
    names: tuple[str, ...]
    #: The Redis keys, in the order of ``names``.
    keys: tuple[str, ...]
    values: tuple[str, ...]
    holder: str
    tokens: Mapping[str, int]


class Lease:
    """Locks held together by one holder until :meth:`release` or expiry.

    Created by :class:`~ceso.locks.LockManager`, never directly. ``tokens``
    maps each name to its fencing token: it grows with every acquisition of
    that name, so a SQL write guarded by ``WHERE fence <= :token`` rejects a
    job that lost the lock to a newer holder.

    The lease is trusted only for ``ttl`` after the last successful
    acquire/renew (minus a small clock-drift margin), measured locally: when
    Redis cannot be reached, :attr:`lost` turns true on time alone, because the
    keys may have expired and been taken meanwhile.

    Thread-safe: the renewal thread and the job thread may use it together.
    Used as a context manager it starts renewal and always releases on exit.
    """

    def __init__(self, manager: LockManager, grant: Grant, *, waited_s: float, acquired_at: float) -> None:
        self.grant = grant
        self.kind: LeaseKind = grant.kind
        self.names = grant.names
        #: The Redis keys, in the order of ``names`` (for debugging and operators).
        self.keys = grant.keys
        self.holder = grant.holder
        self.tokens = dict(grant.tokens)
        #: Seconds spent waiting for the locks (the ``ceso_lock_wait_seconds`` observation).
        self.waited_s = waited_s
        self._manager = manager
        self._ttl_s = manager.ttl_s
        # Redlock's margin for clock drift between this process and Redis.
        self._drift_s = manager.ttl_s * 0.01 + 0.002
        self._valid_until = acquired_at + manager.ttl_s - self._drift_s
        self._state = threading.Lock()
        self._lost_reason: str | None = None
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<Lease {self.kind} {list(self.names)} holder={self.holder!r} tokens={self.tokens}>"

    # -- state -------------------------------------------------------------------------------
    @property
    def lost(self) -> bool:
        """True once the lease is known lost or could have expired; never turns false again."""
        with self._state:
            if self._lost_reason is None and not self._released and time.monotonic() >= self._valid_until:
                self._lost_reason = "was not renewed within its TTL and may have expired"
            return self._lost_reason is not None

    @property
    def released(self) -> bool:
        return self._released

    @property
    def remaining_s(self) -> float:
        """Seconds this lease is still known to be valid (0 when lost or released)."""
        if self.lost or self._released:
            return 0.0
        return max(0.0, self._valid_until - time.monotonic())

    def check(self) -> None:
        """Raise LockLostError if the lease is lost, may have expired, or was released.

        Cheap (no Redis round-trip): call it between job steps and before writes.
        """
        if self.lost:
            raise self._lost_error()
        if self._released:
            raise LockLostError(f"{self._describe()} was already released", details=self._details())

    def _mark_lost(self, reason: str) -> LockLostError:
        with self._state:
            if self._lost_reason is None and not self._released:
                self._lost_reason = reason
                log.warning("%s %s", self._describe(), reason)
        return self._lost_error()

    def _lost_error(self) -> LockLostError:
        reason = self._lost_reason or "was lost"
        return LockLostError(f"{self._describe()} {reason}", details=self._details())

    def _describe(self) -> str:
        return f"{self.kind} {', '.join(self.names)} of {self.holder}"

    def _details(self) -> dict[str, object]:
        return {"locks": list(self.names), "holder": self.holder, "tokens": dict(self.tokens)}

    # -- renewal -----------------------------------------------------------------------------
    def renew(self) -> None:
        """Extend every lock of the lease by the TTL, all or none.

        Raises LockLostError (and sets :attr:`lost`) if any of them expired or
        is held by someone else — none is extended then; TransientError if
        Redis is unreachable (the lease stays valid until its TTL runs out).
        """
        if self._released:
            raise LockLostError(f"{self._describe()} was already released", details=self._details())
        if self.lost:
            raise self._lost_error()
        started = time.monotonic()
        lost = self._manager.renew(self.grant)
        if lost is not None:
            name, current = lost
            now_held = f"is now held by {current}" if current else "expired"
            raise self._mark_lost(f"lost {name}: it {now_held}")
        with self._state:
            self._valid_until = max(self._valid_until, started + self._ttl_s - self._drift_s)

    def start_renewal(self) -> None:
        """Renew in a daemon thread every ``renew_every_s`` until release or loss.

        The thread never raises: a lost lease sets :attr:`lost`; a Redis error
        is logged and retried sooner until the TTL runs out, which also sets
        :attr:`lost`. Idempotent. Raises LockLostError if already lost or released.
        """
        self.check()
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"lock-renew-{self.holder[:16]}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        every = self._manager.renew_every_s
        interval = every
        while not self._stop.wait(interval):
            try:
                self.renew()
            except LockLostError:
                return
            except Exception as exc:  # bookkeeping never kills the thread; the TTL decides
                if self.lost:
                    log.warning("%s is lost: Redis could not be reached within its TTL", self._describe())
                    return
                log.warning("renewing %s failed, retrying: %s", self._describe(), exc)
                # Retry faster than usual so one dropped connection does not cost the lease.
                interval = max(0.01, min(every, self.remaining_s / 3))
            else:
                interval = every

    def _stop_renewal(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._ttl_s)

    # -- release -----------------------------------------------------------------------------
    def release(self) -> None:
        """Stop renewal and delete the locks this lease still holds.

        Never deletes a lock now held by someone else; idempotent. Raises
        TransientError if Redis is unreachable — the locks then expire on
        their own within the TTL, and calling release again retries.
        """
        self._stop_renewal()
        if self._released:
            return
        self._manager.release(self.grant)
        with self._state:
            self._released = True

    def __enter__(self) -> Lease:
        try:
            self.start_renewal()
        except BaseException:
            self.__exit__(None, None, None)  # __exit__ is not called when __enter__ fails
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.release()
        except CesoError as error:
            # Failing a job after its work is done, or hiding the body's own error, would be
            # worse than a lock that lingers for one TTL.
            log.warning(
                "could not release %s (it expires within %ss): %s", self._describe(), self._ttl_s, error
            )
