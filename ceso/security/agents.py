"""Registering and revoking agents. Keyword-light core functions; the CLI and cesod call these.

Every change is audited (``agent.added``, ``agent.revoked``) with the acting
principal; the token itself is never stored, logged or audited.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ceso.audit.store import AuditEvent, record
from ceso.db.bounds import text_limit
from ceso.db.security_models import Agent
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, NotFoundError
from ceso.runtime import Runtime
from ceso.security.caller import current_caller
from ceso.security.modes import parse_mode
from ceso.security.principals import agent_principal
from ceso.security.redact import register_secret
from ceso.security.tokens import hash_token, new_token

__all__ = ["acting_actor", "add_agent", "agent_to_dict", "get_agent", "list_agents", "revoke_agent"]

_NAME = re.compile(r"[a-z][a-z0-9._-]*")  # the length is the column's


def acting_actor() -> str:
    """The actor string of the bound caller (``unknown`` when nothing is bound)."""
    caller = current_caller()
    return caller.principal.actor if caller and caller.principal else "unknown"


def validate_agent_name(name: str) -> str:
    """``name`` if it is a valid agent name (it becomes the actor ``agent:NAME``); InvalidInputError if not."""
    limit = text_limit(Agent, "name")
    if len(name) > limit or not _NAME.fullmatch(name):
        shown = repr(name) if len(name) <= 40 else f"{name[:20]!r}… ({len(name)} characters)"
        raise InvalidInputError(
            f"invalid agent name {shown}: 1-{limit} of a-z, 0-9, '.', '_', '-', starting with a letter"
        )
    return name


def agent_to_dict(session: Session, agent: Agent) -> dict[str, Any]:
    """The ``--json`` shape of an agent (never its token or hash)."""
    principal = agent_principal(session, agent) if agent.revoked_at is None else None
    return {
        "name": agent.name,
        "mode": agent.mode,
        "effective_mode": principal.mode if principal else None,
        "promotion_expires_at": principal.promotion_expires_at.isoformat()
        if principal and principal.promotion_expires_at
        else None,
        "created_at": agent.created_at.isoformat(),
        "created_by": agent.created_by,
        "revoked_at": agent.revoked_at.isoformat() if agent.revoked_at else None,
        "revoked_by": agent.revoked_by,
    }


def get_agent(session: Session, name: str) -> Agent:
    """The agent ``name`` (revoked ones included); NotFoundError if none."""
    agent = session.exec(select(Agent).where(Agent.name == name)).first()
    if agent is None:
        raise NotFoundError(f"no agent named {name!r}")
    return agent


def list_agents(session: Session, *, include_revoked: bool = True) -> list[Agent]:
    query = select(Agent).order_by(Agent.name)
    if not include_revoked:
        query = query.where(Agent.revoked_at == None)  # noqa: E711  (SQL IS NULL)
    return list(session.exec(query).all())


def add_agent(runtime: Runtime, name: str, mode: str = "read-only") -> tuple[Agent, str]:
    """Register agent ``name`` in ``mode``; return it and its token (shown once, stored hashed).

    ConflictError if the name was ever used: a revoked agent's name is not
    reused, so old jobs and audit records never point at a new holder.
    """
    validate_agent_name(name)
    parse_mode(mode)
    token = new_token()
    register_secret(token)
    agent = Agent(name=name, mode=mode, token_hash=hash_token(token), created_by=acting_actor())
    try:
        with Session(runtime.engine, expire_on_commit=False) as session:
            session.add(agent)
            session.commit()
    except sa.exc.IntegrityError:
        raise ConflictError(
            f"agent {name!r} already exists (names of revoked agents are not reused)"
        ) from None
    record(
        runtime.engine,
        AuditEvent("agent.added", operation="agent.add", details={"agent": name, "agent_mode": mode}),
    )
    return agent, token


def revoke_agent(runtime: Runtime, name: str) -> Agent:
    """Revoke agent ``name``: its token stops working at once and its queued jobs are refused when claimed.

    Revoking an already revoked agent changes nothing and is not an error.
    """
    now = utcnow()
    by = acting_actor()
    with Session(runtime.engine, expire_on_commit=False) as session:
        agent = get_agent(session, name)
        if agent.revoked_at is not None:
            return agent
        agent.revoked_at, agent.revoked_by = now, by
        session.add(agent)
        session.commit()
    record(runtime.engine, AuditEvent("agent.revoked", operation="agent.revoke", details={"agent": name}))
    return agent
