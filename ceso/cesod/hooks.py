"""Observers of cesod calls: the hook for metrics (agent activity) and anything else that counts calls.

``add_call_observer(fn)`` registers ``fn(principal, method, outcome, seconds)``;
``outcome`` is ``ok`` or the error's ``data.code``. Observers never break a
call: failures are logged. By default an agent's call is recorded in
:mod:`ceso.metrics.record` (``ceso_agent_operations_total``) when metrics are
enabled in the process, with bounded labels: ``operation`` is the method name,
or ``unknown`` for a method cesod does not have; ``outcome`` is ``ok``,
``refused`` (the sandbox said no: the mode or a guard rail) or ``failed`` (any
other error; the audit trail and the access log keep its code).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["REFUSED_CODES", "add_call_observer", "metric_outcome", "notify_call"]

log = logging.getLogger(__name__)

CallObserver = Callable[[Any, str, str, float], None]
_observers: list[CallObserver] = []

#: Error codes of the sandbox's refusals (ceso.security.gate, ceso.security.guardrails).
REFUSED_CODES = frozenset({"not_permitted", "guard_rail"})


def add_call_observer(fn: CallObserver) -> CallObserver:
    _observers.append(fn)
    return fn


@add_call_observer
def _metrics(principal: Any, method: str, outcome: str, seconds: float) -> None:
    if principal is None or not principal.is_agent:
        return
    from ceso.cesod.methods import METHODS
    from ceso.metrics.record import observe_agent_operation

    # Any string an agent sends as a method name would otherwise become a new series.
    operation = method if method in METHODS else "unknown"
    observe_agent_operation(principal.name, principal.mode, operation, metric_outcome(outcome))


def metric_outcome(outcome: str) -> str:
    """``ok``, ``refused`` or ``failed`` for a call's outcome (``ok`` or an error's ``data.code``)."""
    if outcome == "ok":
        return "ok"
    return "refused" if outcome in REFUSED_CODES else "failed"


def notify_call(principal: Any, method: str, outcome: str, seconds: float) -> None:
    for fn in list(_observers):
        try:
            fn(principal, method, outcome, seconds)
        except Exception:
            log.debug("call observer %r failed", fn, exc_info=True)
