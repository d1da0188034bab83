"""LockManager: acquire leases on Redis — exclusive locks and counting semaphores."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ceso.errors import InvalidInputError, LockedError, OperationError, TransientError
from ceso.locks import scripts
from ceso.locks.lease import Grant, Lease, LeaseKind

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["LockManager"]

log = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.02
_MAX_BACKOFF_S = 0.5


@dataclass(frozen=True)
class _Busy:
    """Why one attempt failed: the lock (or semaphore) and who holds it."""

    name: str
    holders: tuple[str, ...]
    message: str


class LockManager:
    """Leases on Redis keys: exclusive locks (:meth:`acquire`, :meth:`hold`) and
    counting semaphores (:meth:`semaphore`). A :class:`~ceso.locks.Lease` keeps
    its :class:`~ceso.locks.Grant` alive through :meth:`renew` and :meth:`release`.

    Keys: a lock ``<key_prefix><name>`` holds ``<token>:<holder>`` with a TTL;
    its fencing counter ``<fence_prefix><name>`` is never deleted, so tokens keep
    growing across holders; a semaphore ``<semaphore_prefix><name>`` is a ZSET of
    ``<token>:<holder>`` scored by expiry. Build names with
    :func:`~ceso.locks.vm_lock_name` and friends, which escape user data.

    Every method raises TransientError when Redis is unreachable and
    OperationError for any other Redis failure, chained to the redis-py error.
    Thread-safe; share one per process.
    """

    def __init__(
        self,
        redis_client: Redis,
        *,
        ttl_s: float = 30.0,
        renew_every_s: float | None = None,
        key_prefix: str = "ceso:lock:",
        fence_prefix: str = "ceso:fence:",
        semaphore_prefix: str = "ceso:sem:",
    ) -> None:
        if not (math.isfinite(ttl_s) and ttl_s >= 0.01):
            raise InvalidInputError(f"lock TTL must be at least 0.01 s, not {ttl_s}")
        renew = ttl_s / 3 if renew_every_s is None else renew_every_s
        if not (math.isfinite(renew) and 0 < renew < ttl_s):
            raise InvalidInputError(f"lock renewal interval must be between 0 and the TTL ({ttl_s} s)")
        self._redis = redis_client
        self.ttl_s = ttl_s
        self.renew_every_s = renew
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self.key_prefix = key_prefix
        self.fence_prefix = fence_prefix
        self.semaphore_prefix = semaphore_prefix
        # Registered once: each call sends EVALSHA and reloads the script only after a NOSCRIPT.
        self._lock_acquire = redis_client.register_script(scripts.LOCK_ACQUIRE)
        self._lock_renew = redis_client.register_script(scripts.LOCK_RENEW)
        self._lock_release = redis_client.register_script(scripts.LOCK_RELEASE)
        self._sem_acquire = redis_client.register_script(scripts.SEMAPHORE_ACQUIRE)
        self._sem_renew = redis_client.register_script(scripts.SEMAPHORE_RENEW)
        self._sem_release = redis_client.register_script(scripts.SEMAPHORE_RELEASE)

    # -- exclusive locks -----------------------------------------------------------------------
    def acquire(self, names: Sequence[str], *, holder: str, wait_s: float = 0.0) -> Lease:
        """Take every lock in ``names`` for ``holder``, all or none, atomically.

        Locks are not re-entrant: a lock already held by ``holder`` counts as
        held. While ``wait_s`` has not run out, retries with capped, jittered
        backoff. Raises LockedError (details: ``lock``, ``holders``,
        ``waited_s``) naming a held lock and its holder — nothing is taken
        then. The lease is not renewed until :meth:`Lease.start_renewal`
        (or use :meth:`hold`).
        """
        ordered = self._check_names(names)
        self._check_holder(holder)
        keys = [self.key_prefix + n for n in ordered]
        fences = [self.fence_prefix + n for n in ordered]

        def attempt() -> tuple[dict[str, int], tuple[str, ...]] | _Busy:
            reply = self._call(self._lock_acquire, [*keys, *fences], [holder, self._ttl_ms], "acquiring")
            if int(reply[0]) == 1:
                tokens = [int(t) for t in reply[1:]]
                return dict(zip(ordered, tokens, strict=True)), tuple(f"{t}:{holder}" for t in tokens)
            name = ordered[int(reply[1]) - 1]
            current = _holder_of(reply[2])
            if current == holder:
                return _Busy(name, (current,), f"lock {name} is already held by {holder} (not re-entrant)")
            return _Busy(name, (current,), f"lock {name} is held by {current}")

        return self._acquire(attempt, "lock", tuple(ordered), tuple(keys), holder, wait_s)

    @contextmanager
    def hold(self, names: Sequence[str], *, holder: str, wait_s: float = 0.0) -> Iterator[Lease]:
        """:meth:`acquire`, renew in the background while the body runs, always release.

        The body should call :meth:`Lease.check` between steps. A failed
        release is logged, not raised: the locks then expire within the TTL.
        """
        with self.acquire(names, holder=holder, wait_s=wait_s) as lease:
            yield lease

    # -- counting semaphores ---------------------------------------------------------------------
    def semaphore(self, name: str, limit: int, *, holder: str, wait_s: float = 0.0) -> Lease:
        """Take one of ``limit`` slots of semaphore ``name`` for ``holder``.

        Expired slots are reclaimed on every attempt. A holder gets at most one
        slot. Raises LockedError (details: ``lock``, ``holders``, ``limit``,
        ``waited_s``) when all slots stay taken for ``wait_s``. Same Lease API
        as :meth:`acquire`; use ``with manager.semaphore(...) as lease:`` to
        renew in the background and always release.
        """
        (name,) = self._check_names([name])
        self._check_holder(holder)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(f"semaphore limit must be a positive integer, not {limit!r}")
        key = self.semaphore_prefix + name
        fence = self.fence_prefix + name

        def attempt() -> tuple[dict[str, int], tuple[str, ...]] | _Busy:
            reply = self._call(self._sem_acquire, [key, fence], [holder, self._ttl_ms, limit], "acquiring")
            status = int(reply[0])
            if status == 1:
                return {name: int(reply[1])}, (f"{int(reply[1])}:{holder}",)
            holders = tuple(_holder_of(m) for m in reply[1:])
            if status == 2:
                return _Busy(name, holders, f"{holder} already holds a slot of semaphore {name}")
            return _Busy(
                name, holders, f"semaphore {name} has all {limit} slots taken by {', '.join(holders)}"
            )

        return self._acquire(attempt, "semaphore", (name,), (key,), holder, wait_s, limit=limit)

    # -- internals ---------------------------------------------------------------------------------
    def _acquire(
        self,
        attempt: Callable[[], tuple[dict[str, int], tuple[str, ...]] | _Busy],
        kind: LeaseKind,
        names: tuple[str, ...],
        keys: tuple[str, ...],
        holder: str,
        wait_s: float,
        *,
        limit: int | None = None,
    ) -> Lease:
        if not (math.isfinite(wait_s) and wait_s >= 0):
            raise InvalidInputError(f"wait_s must be a finite number >= 0, not {wait_s}")
        start = time.monotonic()
        deadline = start + wait_s
        backoff = _FIRST_BACKOFF_S
        while True:
            tried_at = time.monotonic()
            result = attempt()
            now = time.monotonic()
            if not isinstance(result, _Busy):
                tokens, values = result
                grant = Grant(kind=kind, names=names, keys=keys, values=values, holder=holder, tokens=tokens)
                return Lease(self, grant, waited_s=now - start, acquired_at=tried_at)
            if now >= deadline:
                waited = now - start
                details: dict[str, Any] = {
                    "lock": result.name,
                    "holders": list(result.holders),
                    **({"holder": result.holders[0]} if len(result.holders) == 1 else {}),
                    "waited_s": round(waited, 3),
                }
                if limit is not None:
                    details["limit"] = limit
                suffix = f" (waited {waited:.1f} s)" if wait_s > 0 else ""
                raise LockedError(result.message + suffix, details=details)
            # Jitter keeps contending workers from retrying in lockstep; not security-relevant.
            time.sleep(min(deadline - now, backoff * random.uniform(0.5, 1.0)))  # noqa: S311
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    # -- keeping a grant alive: what a Lease calls ---------------------------------------------
    def renew(self, grant: Grant) -> tuple[str, str | None] | None:
        """Extend every key of ``grant`` by the TTL, all or none.

        Returns None when all were extended, else ``(name, current holder)`` of
        the first one this holder no longer has (holder None: it expired); none
        is extended then. Use :meth:`Lease.renew`, which also tracks validity.
        """
        if grant.kind == "semaphore":
            ok = self._call(self._sem_renew, list(grant.keys), [self._ttl_ms, grant.values[0]], "renewing")
            return None if int(ok) == 1 else (grant.names[0], None)
        reply = self._call(self._lock_renew, list(grant.keys), [self._ttl_ms, *grant.values], "renewing")
        index = int(reply[0])
        if index == 0:
            return None
        current = reply[1] if len(reply) > 1 else None
        return grant.names[index - 1], (_holder_of(current) if current is not None else None)

    def release(self, grant: Grant) -> None:
        """Delete the keys of ``grant`` that this holder still has; never another holder's.

        Idempotent. Use :meth:`Lease.release`, which also stops the renewal.
        """
        script = self._sem_release if grant.kind == "semaphore" else self._lock_release
        self._call(script, list(grant.keys), list(grant.values), "releasing")

    def _call(self, script: Script, keys: list[str], args: list[Any], action: str) -> Any:
        """Run a script; Redis errors become ceso errors (connection trouble is transient)."""
        import redis.exceptions as rx

        try:
            return script(keys=keys, args=args, client=self._redis)
        except (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError) as exc:
            raise OperationError(f"Redis refused ceso's credentials while {action} locks: {exc}") from exc
        except (rx.ConnectionError, rx.TimeoutError, rx.ReadOnlyError, rx.TryAgainError) as exc:
            raise TransientError(f"Redis is unreachable while {action} locks: {exc}") from exc
        except rx.RedisError as exc:
            raise OperationError(f"Redis failed while {action} locks: {exc}") from exc

    @staticmethod
    def _check_names(names: Sequence[str]) -> list[str]:
        if isinstance(names, str):
            raise InvalidInputError("names must be a list of lock names, not a single string")
        ordered = sorted(set(names))  # one global order: no two acquisitions can deadlock
        if not ordered:
            raise InvalidInputError("at least one lock name is required")
        for name in ordered:
            if not isinstance(name, str) or not name:
                raise InvalidInputError(f"a lock name must be a non-empty string, not {name!r}")
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(
                    f"lock name {name!r} is not valid Unicode; build it with vm_lock_name() and friends"
                ) from None
        return ordered

    @staticmethod
    def _check_holder(holder: str) -> None:
        if not isinstance(holder, str) or not holder:
            raise InvalidInputError(f"a lock holder must be a non-empty string, not {holder!r}")
        try:
            holder.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"lock holder {holder!r} is not valid Unicode") from None


def _holder_of(value: bytes | str) -> str:
    """The holder part of a stored ``<token>:<holder>`` value."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text.partition(":")[2] or text
