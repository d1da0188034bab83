"""Waiting on a VM and its guest, written once for every route.

Each route only reads (``power_state``, ``guest_ips``) and asks
(``ask_guest_shutdown``, ``power_off``); the polling, the deadlines and the
messages of a timeout are here, so the API and SSH routes cannot drift apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ceso.backends.protocol import AnyBackend
from ceso.errors import TimeoutExpiredError
from ceso.vm.addresses import usable_addresses

__all__ = [
    "shut_down_guest",
    "shut_down_or_power_off",
    "wait_for_ip",
    "wait_for_power_state",
    "wait_power_state",
]

log = logging.getLogger(__name__)


def wait_for_power_state(
    read_state: Callable[[], str], state: str, *, timeout: float, what: str, host: str
) -> None:
    """Poll ``read_state`` every 0.5 s until it says ``state``; TimeoutExpiredError naming ``what``
    and ``host`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while read_state() != state:
        if time.monotonic() > deadline:
            raise TimeoutExpiredError(f"{what} did not reach {state} within {timeout:.0f}s on host {host}")
        time.sleep(0.5)


def wait_power_state(ops: AnyBackend, vm: Any, state: str, *, timeout: float) -> None:
    """Wait until ``vm`` is in power ``state``; TimeoutExpiredError after ``timeout`` seconds."""
    wait_for_power_state(lambda: ops.power_state(vm), state, timeout=timeout, what="VM", host=ops.host)


def shut_down_guest(ops: AnyBackend, vm: Any, *, timeout: float) -> None:
    """Ask the guest to shut down and wait until the VM is powered off.

    Raises what the host says to the request (OperationError without VMware
    Tools, ConflictError in the wrong power state) or TimeoutExpiredError; the
    VM is then left as it is.
    """
    ops.ask_guest_shutdown(vm)
    wait_power_state(ops, vm, "poweredOff", timeout=timeout)


def shut_down_or_power_off(ops: AnyBackend, vm: Any, *, timeout: float) -> None:
    """:func:`shut_down_guest`; if the guest does not stop (no Tools, a hung guest), power off,
    as an operator would. Raises only what the power-off raises."""
    try:
        shut_down_guest(ops, vm, timeout=timeout)
    except Exception:  # no Tools or a hung guest: whatever it was, the VM must stop
        log.warning("guest shutdown failed on host %s; powering the VM off", ops.host, exc_info=True)
        if ops.power_state(vm) != "poweredOff":
            ops.power_off(vm)


def wait_for_ip(ops: AnyBackend, vm: Any, *, expected: list[str], timeout: float) -> list[str]:
    """Wait until VMware Tools report an IP (one of ``expected`` if given); return the addresses.

    Link-local and loopback addresses do not count and are not returned; ``expected``
    ones come first (:func:`ceso.vm.addresses.usable_addresses`). Polls
    ``ops.guest_ips`` with a capped backoff (0.5 s growing to 5 s);
    TimeoutExpiredError after ``timeout`` seconds. Changes nothing.
    """
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        ips = usable_addresses(ops.guest_ips(vm), expected)  # no link-local or loopback; the configured first
        if ips and (not expected or set(expected) & set(ips)):
            return ips
        if time.monotonic() > deadline:
            raise TimeoutExpiredError(
                f"guest reported no {'address ' + ', '.join(expected) if expected else 'IP address'} "
                f"within {timeout:.0f}s (is open-vm-tools running?)"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
