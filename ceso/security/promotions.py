"""Promotions: an agent asks for a higher mode for a while; an operator approves or denies.

Life of a promotion (``state`` in SQL; *expired* is computed, never stored)::

    pending ──approve──▶ approved ──(expires_at passes)──▶ expired
       └──deny──▶ denied      └──revoke──▶ revoked

Durations are capped by ``security.promotion_max_s`` (never more than 4 h).
An agent has at most one pending request. Nobody approves their own
request. Every step is audited (``promotion.requested``, ``.approved``,
``.denied``, ``.revoked``); expiry needs no step: every check reads
``expires_at``, so a promotion ends on time even if no process is running.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ceso.audit.store import AuditEvent, record
from ceso.db.bounds import text_limit
from ceso.db.security_models import Promotion
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, NotFoundError, NotPermittedError
from ceso.runtime import Runtime
from ceso.security.durations import format_duration
from ceso.security.modes import parse_mode, rank
from ceso.security.principals import Principal

__all__ = [
    "approve_promotion",
    "deny_promotion",
    "list_promotions",
    "promotion_state",
    "promotion_to_dict",
    "request_promotion",
    "revoke_promotion",
]

MAX_REASON = text_limit(Promotion, "reason")


def promotion_state(promo: Promotion, now: datetime | None = None) -> str:
    """pending, approved (running now), expired, denied or revoked."""
    if promo.state == "approved" and promo.expires_at is not None and promo.expires_at <= (now or utcnow()):
        return "expired"
    return promo.state


def promotion_to_dict(promo: Promotion, now: datetime | None = None) -> dict[str, Any]:
    """The ``--json`` shape of a promotion request."""

    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": promo.id,
        "agent": promo.agent,
        "mode": promo.mode,
        "for": format_duration(promo.requested_s),
        "for_s": promo.requested_s,
        "reason": promo.reason,
        "state": promotion_state(promo, now),
        "requested_at": ts(promo.requested_at),
        "decided_at": ts(promo.decided_at),
        "decided_by": promo.decided_by,
        "expires_at": ts(promo.expires_at),
        "revoked_at": ts(promo.revoked_at),
        "revoked_by": promo.revoked_by,
    }


def _check_length(runtime: Runtime, seconds: int) -> int:
    cap = runtime.settings.security.promotion_max_s
    if seconds > cap:
        raise InvalidInputError(
            f"--for {format_duration(seconds)} is longer than the cap of {format_duration(cap)}"
        )
    return seconds


def request_promotion(
    runtime: Runtime, principal: Principal, *, mode: str, seconds: int | None, reason: str
) -> Promotion:
    """Record ``principal``'s pending request for ``mode`` for ``seconds`` (default: the configured one)."""
    if not principal.is_agent:
        raise InvalidInputError("only agents ask for promotions (operators have their configured mode)")
    parse_mode(mode)
    if rank(mode) <= rank(principal.mode):
        raise InvalidInputError(f"agent {principal.name} already has mode {principal.mode}")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInputError(f"--reason must be 1-{MAX_REASON} characters: say what the promotion is for")
    length = _check_length(runtime, seconds or runtime.settings.security.promotion_default_s)
    with Session(runtime.engine, expire_on_commit=False) as session:
        pending = session.exec(
            select(Promotion).where(Promotion.agent == principal.name, Promotion.state == "pending")
        ).first()
        if pending is not None:
            raise ConflictError(f"agent {principal.name} already has pending request {pending.id}")
        promo = Promotion(agent=principal.name, mode=mode, reason=reason, requested_s=length)
        session.add(promo)
        session.commit()
    _audit(runtime, "promotion.requested", "agent.request_promotion", promo)
    return promo


def list_promotions(
    session: Session, *, pending_only: bool = False, agent: str | None = None
) -> list[Promotion]:
    """Newest first."""
    query = select(Promotion).order_by(col(Promotion.id).desc())
    if pending_only:
        query = query.where(Promotion.state == "pending")
    if agent is not None:
        query = query.where(Promotion.agent == agent)
    return list(session.exec(query).all())


def _get(session: Session, promotion_id: int) -> Promotion:
    from ceso.db.bounds import check_integer

    check_integer(promotion_id, Promotion, "id", what="promotion request ID")
    promo = session.get(Promotion, promotion_id)
    if promo is None:
        raise NotFoundError(f"no promotion request {promotion_id}")
    return promo


def _decide(runtime: Runtime, promotion_id: int, by: Principal, *, want: str, **values: Any) -> Promotion:
    """Move request ``promotion_id`` from state ``want`` (compare-and-set: two deciders cannot both win)."""
    with Session(runtime.engine, expire_on_commit=False) as session:
        promo = _get(session, promotion_id)
        if by.is_agent and by.name == promo.agent:
            raise NotPermittedError(f"agent {by.name} cannot decide on its own promotion request")
        state = promotion_state(promo)
        if state != want:
            raise ConflictError(f"promotion request {promotion_id} is {state}, not {want}")
    with runtime.engine.begin() as conn:
        moved = conn.execute(
            sa.update(Promotion)
            .where(col(Promotion.id) == promotion_id, col(Promotion.state) == promo.state)
            .values(**values)
        ).rowcount
    if moved != 1:
        raise ConflictError(f"promotion request {promotion_id} was decided by someone else just now")
    with Session(runtime.engine, expire_on_commit=False) as session:
        return _get(session, promotion_id)


def approve_promotion(
    runtime: Runtime, promotion_id: int, by: Principal, *, seconds: int | None = None
) -> Promotion:
    """Approve a pending request for ``seconds`` (default: what was asked), starting now."""
    with Session(runtime.engine) as session:
        asked = _get(session, promotion_id).requested_s
    length = _check_length(runtime, seconds or asked)
    now = utcnow()
    promo = _decide(
        runtime,
        promotion_id,
        by,
        want="pending",
        state="approved",
        decided_at=now,
        decided_by=by.actor,
        expires_at=now + timedelta(seconds=length),
    )
    _audit(runtime, "promotion.approved", "agent.approve", promo)
    return promo


def deny_promotion(runtime: Runtime, promotion_id: int, by: Principal) -> Promotion:
    promo = _decide(
        runtime, promotion_id, by, want="pending", state="denied", decided_at=utcnow(), decided_by=by.actor
    )
    _audit(runtime, "promotion.denied", "agent.deny", promo)
    return promo


def revoke_promotion(runtime: Runtime, promotion_id: int, by: Principal) -> Promotion:
    """End an approved, unexpired promotion now."""
    promo = _decide(
        runtime, promotion_id, by, want="approved", state="revoked", revoked_at=utcnow(), revoked_by=by.actor
    )
    _audit(runtime, "promotion.revoked", "agent.revoke_promotion", promo)
    return promo


def _audit(runtime: Runtime, event: str, operation: str, promo: Promotion) -> None:
    details = {
        "promotion": promo.id,
        "agent": promo.agent,
        "to_mode": promo.mode,
        "for_s": promo.requested_s,
        "reason": promo.reason,
        "expires_at": promo.expires_at.isoformat() if promo.expires_at else None,
    }
    record(runtime.engine, AuditEvent(event, operation=operation, details=details))
