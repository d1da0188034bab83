"""Observers of cesod calls: the hook for metrics (agent activity) and anything else that counts calls.

``add_call_observer(fn)`` registers ``fn(principal, method, outcome, seconds)``;
``outcome`` is ``ok`` or the error's ``data.code``. Observers never break a
call: failures are logged. By default the call is recorded in
:mod:`ceso.metrics.record` (``ceso_agent_operations_total``) when metrics are
enabled in the process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["add_call_observer", "notify_call"]

log = logging.getLogger(__name__)

CallObserver = Callable[[Any, str, str, float], None]
_observers: list[CallObserver] = []


def add_call_observer(fn: CallObserver) -> CallObserver:
    _observers.append(fn)
    return fn


@add_call_observer
def _metrics(principal: Any, method: str, outcome: str, seconds: float) -> None:
    if principal is None or not principal.is_agent:
        return
    from ceso.metrics.record import observe_agent_operation

    observe_agent_operation(principal.name, principal.mode, method, outcome)


def notify_call(principal: Any, method: str, outcome: str, seconds: float) -> None:
    for fn in list(_observers):
        try:
            fn(principal, method, outcome, seconds)
        except Exception:
            log.debug("call observer %r failed", fn, exc_info=True)
