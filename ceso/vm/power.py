"""Power actions and what each one needs, shared by ``power_request`` and the ``vm.power`` worker.

Chosen semantics (the issue left them open): asking for the state a VM is
already in is an idempotent success with a note, never an error, so an agent
or a retried job can repeat ``on``, ``off`` or ``shutdown`` safely. Actions
that need a running guest (``reset``, ``reboot``) on a VM that is not
powered on are a ConflictError (exit 5), as is ``shutdown`` of a suspended
VM (its guest is not running; ``off`` discards the suspended state).
"""

from __future__ import annotations

from ceso.errors import ConflictError, InvalidInputError

__all__ = [
    "DEFAULT_GUEST_TIMEOUT_S",
    "MAX_GUEST_TIMEOUT_S",
    "POWER_ACTIONS",
    "check_power_action",
]

POWER_ACTIONS = ("on", "off", "shutdown", "reboot", "reset")
DEFAULT_GUEST_TIMEOUT_S = 300.0
MAX_GUEST_TIMEOUT_S = 3000.0  # below the jobs' default soft time limit, so the fallback still has time

_ALREADY = {"on": "poweredOn", "off": "poweredOff", "shutdown": "poweredOff"}


def check_power_action(action: str, *, name: str, host: str, state: str) -> str | None:
    """Whether ``action`` makes sense for a VM in power ``state``.

    Returns None when there is work to do, or a note when the VM is already
    where ``action`` would take it (nothing to do). Raises InvalidInputError
    for an unknown action and ConflictError when the action is impossible.
    """
    if action not in POWER_ACTIONS:
        raise InvalidInputError(f"unknown power action {action!r} (one of {', '.join(POWER_ACTIONS)})")
    if _ALREADY.get(action) == state:
        return f"VM was already {state}; nothing done"
    if action in ("reset", "reboot") and state != "poweredOn":
        raise ConflictError(f"VM {name!r} on host {host} is {state}: {action} needs a powered-on VM")
    if action == "shutdown" and state != "poweredOn":
        raise ConflictError(
            f"VM {name!r} on host {host} is {state}: its guest is not running; use `ceso vm power off`"
        )
    return None
