"""Faults of the machinery around a job's work (the broker, SQL, a lock's lease, the connection to
the host), told apart from a verdict on the work: a job stopped by one may have done all its work,
so it is reconciled (:mod:`ceso.operations.reconcile`) before it is failed."""

from __future__ import annotations

from ceso.errors import CesoError

__all__ = ["FAULT_CODES", "is_fault", "sql_unreachable"]

#: Error codes of faults that say nothing about the work itself: the broker, SQL, a lock's lease,
#: the connection to the host. A job stopped by one of them may have done all its work.
FAULT_CODES = frozenset(
    {
        "transient",
        "connection_lost",
        "session_lost",
        "http_error",
        "broker_unreachable",
        "lock_lost",
        "host_unreachable",
        "database_unreachable",
    }
)


def is_fault(exc: BaseException) -> bool:
    """True if ``exc`` is a fault of the machinery around the work, not a verdict on the work: one
    of :data:`FAULT_CODES`, or SQL unreachable (a connection error, or one raised from it)."""
    if isinstance(exc, CesoError) and exc.code in FAULT_CODES:
        return True
    return sql_unreachable(exc) is not None


def sql_unreachable(exc: BaseException) -> BaseException | None:
    """The SQL connection error behind ``exc`` (itself, or one it was raised from), or None."""
    import sqlalchemy as sa

    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # a chain can loop back on itself
        if isinstance(seen, (sa.exc.OperationalError, sa.exc.InterfaceError)):
            return seen
        visited.add(id(seen))
        seen = seen.__cause__
    return None
