"""SQL tables of the sandbox: agents, promotions and the hash-chained audit trail.

Imported at the end of :mod:`ceso.db.models` so that Alembic and every process
see them; migration ``0004a`` creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from ceso.db.types import UTCDateTime, utcnow

__all__ = ["GENESIS_HASH", "Agent", "AuditHead", "AuditRecord", "Promotion"]

#: ``prev_hash`` of the first audit record.
GENESIS_HASH = "0" * 64


class Agent(SQLModel, table=True):
    """A named agent. Only the SHA-256 of its token is stored; names are never reused."""

    __tablename__ = "agents"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(64), nullable=False, unique=True))
    mode: str = Field(sa_column=Column(sa.String(16), nullable=False))
    token_hash: str = Field(sa_column=Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(sa_column=Column(sa.String(128), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_by: str | None = Field(default=None, sa_column=Column(sa.String(128), nullable=True))


class Promotion(SQLModel, table=True):
    """An agent's request for a higher mode, and the operator's decision on it.

    ``state`` is pending, approved, denied or revoked; an approved promotion
    whose ``expires_at`` has passed is expired (computed, never written).
    """

    __tablename__ = "promotions"
    __table_args__ = (sa.Index("ix_promotions_agent_state", "agent", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    agent: str = Field(sa_column=Column(sa.String(64), nullable=False))
    mode: str = Field(sa_column=Column(sa.String(16), nullable=False))
    reason: str = Field(sa_column=Column(sa.String(500), nullable=False))
    requested_s: int = Field(sa_column=Column(sa.Integer, nullable=False))
    state: str = Field(default="pending", sa_column=Column(sa.String(16), nullable=False))
    requested_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    decided_by: str | None = Field(default=None, sa_column=Column(sa.String(128), nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_by: str | None = Field(default=None, sa_column=Column(sa.String(128), nullable=True))


class AuditRecord(SQLModel, table=True):
    """One audit record. ``seq`` is its place in the chain; ``hash`` covers every other column.

    Append-only: the migration installs triggers that refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        sa.Index("ix_audit_records_at", "at"),
        sa.Index("ix_audit_records_actor", "actor"),
        sa.Index("ix_audit_records_vm", "vm"),
        sa.Index("ix_audit_records_job_id", "job_id"),
    )

    seq: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    event: str = Field(sa_column=Column(sa.String(48), nullable=False))
    outcome: str = Field(sa_column=Column(sa.String(16), nullable=False))
    operation: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    actor: str = Field(sa_column=Column(sa.String(128), nullable=False))
    mode: str | None = Field(default=None, sa_column=Column(sa.String(16), nullable=True))
    source: str = Field(sa_column=Column(sa.String(16), nullable=False))
    client_addr: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    job_id: str | None = Field(default=None, sa_column=Column(sa.String(36), nullable=True))
    host: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    vm: str | None = Field(default=None, sa_column=Column(sa.String(255), nullable=True))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(sa.JSON, nullable=False))
    prev_hash: str = Field(sa_column=Column(sa.String(64), nullable=False))
    hash: str = Field(sa_column=Column(sa.String(64), nullable=False))


class AuditHead(SQLModel, table=True):
    """The single row (id 1) naming the newest record: appends lock it, so the chain never forks."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(sa.Integer, nullable=False))
    hash: str = Field(sa_column=Column(sa.String(64), nullable=False))
