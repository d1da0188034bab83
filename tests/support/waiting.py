"""Polling for a condition in end-to-end tests, with a bound and a message that says what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(what: str, ready: Callable[[], T], timeout: float, *, every: float = 0.5) -> T:
    """Call ``ready`` until it returns something truthy, and return that; fail the test naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = ready()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
