"""Principals: an actor with its mode *now*, resolved from SQL and settings on every check.

An actor is written on jobs and audit records as a string:

* ``agent:NAME`` — a registered agent; its mode is its registered mode raised
  by any approved, unexpired, unrevoked promotion;
* ``operator:NAME``, or the legacy ``operator`` and ``beat`` — the local
  operator (or a schedule acting for it), in ``security.operator_mode``.

Anything else, an unknown agent or a revoked one is refused with
NotPermittedError: nothing runs under an identity ceso cannot vouch for.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from ceso.db.security_models import Agent, Promotion
from ceso.db.types import utcnow
from ceso.errors import NotPermittedError
from ceso.security.modes import rank
from ceso.security.tokens import hash_token

__all__ = [
    "Principal",
    "agent_principal",
    "authenticate_token",
    "operator_principal",
    "resolve_actor",
]

OPERATOR_ACTORS = ("operator", "beat")


@dataclass(frozen=True)
class Principal:
    """Who acts, and in which mode at the moment it was resolved."""

    actor: str
    kind: str  # operator | agent
    name: str
    base_mode: str
    mode: str
    promotion_id: int | None = None
    promotion_expires_at: datetime | None = None

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shown by ``agent whoami`` and ``system.describe``."""
        expires = self.promotion_expires_at
        return {
            "actor": self.actor,
            "kind": self.kind,
            "name": self.name,
            "mode": self.mode,
            "base_mode": self.base_mode,
            "promotion": {"id": self.promotion_id, "expires_at": expires.isoformat()}
            if expires is not None
            else None,
        }


def operator_principal(settings: Any, actor: str | None = None) -> Principal:
    """The local operator (``security.operator_name`` or the OS user) in ``security.operator_mode``."""
    security = settings.security
    if actor is None:
        name = security.operator_name or _os_user()
        actor = f"operator:{name}"
    else:
        name = actor.partition(":")[2] or actor
    mode = security.operator_mode
    return Principal(actor=actor, kind="operator", name=name, base_mode=mode, mode=mode)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "operator"


def agent_principal(session: Session, agent: Agent, now: datetime | None = None) -> Principal:
    """``agent`` with the best approved promotion still running at ``now``."""
    now = now or utcnow()
    promotions = session.exec(
        select(Promotion).where(
            Promotion.agent == agent.name,
            Promotion.state == "approved",
            col(Promotion.expires_at) > now,
        )
    ).all()
    best: Promotion | None = None
    for promo in promotions:
        if rank(promo.mode) <= rank(agent.mode):
            continue
        if best is None or (rank(promo.mode), promo.expires_at) > (rank(best.mode), best.expires_at):
            best = promo
    return Principal(
        actor=f"agent:{agent.name}",
        kind="agent",
        name=agent.name,
        base_mode=agent.mode,
        mode=best.mode if best else agent.mode,
        promotion_id=best.id if best else None,
        promotion_expires_at=best.expires_at if best else None,
    )


def resolve_actor(engine: Engine | Connection, settings: Any, actor: str) -> Principal:
    """The principal behind an actor string, as of now; NotPermittedError if there is none.

    ``engine`` may be a connection in a transaction (the worker's claim): the
    lookup reads in it and leaves it open.
    """
    kind, _, name = actor.partition(":")
    if actor in OPERATOR_ACTORS or (kind == "operator" and name):
        return operator_principal(settings, actor)
    if kind != "agent" or not name:
        raise NotPermittedError(f"unknown actor {actor!r}", code="unknown_actor")
    with Session(engine) as session:
        agent = session.exec(select(Agent).where(Agent.name == name)).first()
        if agent is None:
            raise NotPermittedError(f"unknown agent {name!r}", code="unknown_actor")
        if agent.revoked_at is not None:
            raise NotPermittedError(f"agent {name!r} was revoked", code="agent_revoked")
        return agent_principal(session, agent)


def authenticate_token(engine: Engine, token: str) -> Principal:
    """The agent holding ``token``; NotPermittedError (code ``unauthenticated``) if none does.

    A revoked agent's token is refused with a message saying so. The token is
    never part of any message. Only a token that authenticated is registered
    for redaction by value: a rejected string is whatever a client chose to
    send (a VM's name, say), and registering it would redact that text from
    every later request, job and audit record. Rejected strings that look
    like ceso tokens are still caught by the redaction patterns.
    """
    from ceso.security.redact import register_secret

    digest = hash_token(token.strip())
    with Session(engine) as session:
        agent = session.exec(select(Agent).where(Agent.token_hash == digest)).first()
        if agent is None:
            raise NotPermittedError("invalid agent token", code="unauthenticated")
        if agent.revoked_at is not None:
            raise NotPermittedError(f"agent {agent.name!r} was revoked", code="unauthenticated")
        register_secret(token)
        return agent_principal(session, agent)
