"""Options shared by several commands."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["JobOptions", "Seconds", "job_options"]


class Seconds(click.FloatRange):
    """A number of seconds within range, and finite: click's FloatRange lets ``nan`` and ``inf``
    through, and a deadline of ``nan`` never comes (and a socket refuses it as a timeout)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds.", param, ctx)
        return seconds


def job_options(fn: F) -> F:
    """``--wait/--no-wait``, ``--timeout`` and ``--idempotency-key`` for job-submitting commands."""
    fn = click.option(
        "--idempotency-key",
        metavar="KEY",
        help="Submitting the same key again returns the first job instead of a new one.",
    )(fn)
    fn = click.option(
        "--timeout",
        type=Seconds(min=0),
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


@dataclass(frozen=True)
class JobOptions:
    """What :func:`job_options` gave: how the CLI follows the job, not what the job does."""

    wait: bool = True
    timeout: float | None = None
    idempotency_key: str | None = None

    @classmethod
    def pop_from(cls, params: dict[str, Any]) -> JobOptions:
        """The job options taken out of a command's click ``params``."""
        return cls(params.pop("wait"), params.pop("timeout"), params.pop("idempotency_key"))
