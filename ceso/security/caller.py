"""Who is calling, bound for the duration of one command, RPC call or job run.

Entry points bind a :class:`Caller` (the authenticated principal, the source
``cli``/``cesod``/``beat``/``worker`` and the client address); the core reads
it to stamp audit records and to make sure a job is submitted as the actor
who was authenticated, whatever ``JobRequest.actor`` says. A ContextVar keeps
cesod's request threads apart.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ceso.security.principals import Principal

__all__ = ["SOURCES", "Caller", "bind_caller", "bound", "current_caller", "reset_caller"]

SOURCES = ("cli", "cesod", "beat", "worker")


@dataclass(frozen=True)
class Caller:
    """The authenticated principal (None before authentication), where the call came from, and from which address."""

    principal: Principal | None
    source: str = "cli"
    client_addr: str | None = None


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("ceso_caller", default=None)


def current_caller() -> Caller | None:
    """The bound caller, or None (library use, tests)."""
    return _caller.get()


def bind_caller(caller: Caller) -> contextvars.Token[Caller | None]:
    """Bind ``caller`` in this context; pass the token to :func:`reset_caller`."""
    return _caller.set(caller)


def reset_caller(token: contextvars.Token[Caller | None]) -> None:
    _caller.reset(token)


@contextmanager
def bound(caller: Caller) -> Iterator[Caller]:
    """Bind ``caller`` for the body of a ``with`` block."""
    token = _caller.set(caller)
    try:
        yield caller
    finally:
        _caller.reset(token)
