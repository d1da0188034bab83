"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["job_options"]


def job_options(fn: F) -> F:
    """``--wait/--no-wait``, ``--timeout`` and ``--idempotency-key`` for job-submitting commands."""
    fn = click.option(
        "--idempotency-key",
        metavar="KEY",
        help="Submitting the same key again returns the first job instead of a new one.",
    )(fn)
    fn = click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=None,
        metavar="SECONDS",
        help="With --wait: stop waiting after this long (the job goes on).",
    )(fn)
    fn = click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Follow the job to its end, or print its id at once.",
    )(fn)
    return fn
