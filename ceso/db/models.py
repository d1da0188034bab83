"""SQL tables (SQLModel). Alembic migrations create them; code never calls create_all.

A job row is the durable record of one change: the Celery message carries only
its id, and every worker reads the rest from here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from ceso.db.types import UTCDateTime, utcnow
from ceso.vm.names import MAX_VM_NAME  # ESXi's limit: the columns holding VM names follow it

__all__ = ["JOB_STATES", "TERMINAL_STATES", "Host", "Job", "Template", "VmProtection"]

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class Host(SQLModel, table=True):
    """A registered ESXi host. Its password lives in the secret store, never here."""

    __tablename__ = "hosts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(64), nullable=False, unique=True))
    url: str = Field(sa_column=Column(sa.String(512), nullable=False))
    username: str = Field(sa_column=Column(sa.String(128), nullable=False))
    thumbprint: str | None = Field(default=None, sa_column=Column(sa.String(128), nullable=True))
    route: str = Field(default="auto", sa_column=Column(sa.String(8), nullable=False, server_default="auto"))
    product: str | None = Field(default=None, sa_column=Column(sa.String(256), nullable=True))
    api_version: str | None = Field(default=None, sa_column=Column(sa.String(32), nullable=True))
    ssh_port: int | None = Field(default=None, sa_column=Column(sa.Integer, nullable=True))
    ssh_username: str | None = Field(default=None, sa_column=Column(sa.String(128), nullable=True))
    ssh_auth: str | None = Field(
        default=None, sa_column=Column(sa.String(16), nullable=True)
    )  # password | key
    ssh_host_key: str | None = Field(
        default=None, sa_column=Column(sa.String(128), nullable=True)
    )  # SHA256:...
    capabilities: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(sa.JSON, nullable=False, server_default="{}")
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    checked_at: datetime | None = _ts()


class Job(SQLModel, table=True):
    """One queued change and everything known about how it went."""

    __tablename__ = "jobs"
    __table_args__ = (
        sa.Index("ix_jobs_host_state", "host", "state"),
        sa.Index("ix_jobs_created_at", "created_at"),
    )

    id: str = Field(
        default_factory=lambda: str(uuid.uuid4()), sa_column=Column(sa.String(36), primary_key=True)
    )
    kind: str = Field(sa_column=Column(sa.String(64), nullable=False))
    host: str = Field(sa_column=Column(sa.String(64), nullable=False))
    target: str | None = Field(default=None, sa_column=Column(sa.String(255), nullable=True))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(sa.JSON, nullable=False))
    state: str = Field(default="queued", sa_column=Column(sa.String(16), nullable=False))
    progress: int = Field(default=0, sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    current_step: str | None = Field(default=None, sa_column=Column(sa.String(128), nullable=True))
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(sa.JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(sa.JSON, nullable=True))
    error_code: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    error_message: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    idempotency_key: str | None = Field(
        default=None, sa_column=Column(sa.String(200), nullable=True, unique=True)
    )
    actor: str = Field(default="operator", sa_column=Column(sa.String(128), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    max_attempts: int = Field(default=3, sa_column=Column(sa.Integer, nullable=False, server_default="3"))
    cancel_requested: bool = Field(
        default=False, sa_column=Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    worker: str | None = Field(default=None, sa_column=Column(sa.String(255), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    published_at: datetime | None = _ts()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Template(SQLModel, table=True):
    """A powered-off VM registered as a golden template, with its last validation."""

    __tablename__ = "templates"
    __table_args__ = (sa.UniqueConstraint("host", "name", name="uq_templates_host_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(MAX_VM_NAME), nullable=False))
    host: str = Field(sa_column=Column(sa.String(64), nullable=False))
    vm_uuid: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    status: str = Field(
        default="unvalidated", sa_column=Column(sa.String(16), nullable=False, server_default="unvalidated")
    )
    checks: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(sa.JSON, nullable=False))
    validated_at: datetime | None = _ts()
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class VmProtection(SQLModel, table=True):
    """A VM that ``vm delete`` must refuse (``ceso vm protect``)."""

    __tablename__ = "vm_protections"
    __table_args__ = (sa.UniqueConstraint("host", "vm_name", name="uq_vm_protections_host_vm"),)

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(sa_column=Column(sa.String(64), nullable=False))
    vm_name: str = Field(sa_column=Column(sa.String(MAX_VM_NAME), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(sa.String(255), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# Tables kept in their own modules, imported here so every user of the models sees them:
# the backup catalog's (migration 0004b), the sandbox's (agents, promotions, audit; 0004a) and
# the scheduler's (0006) and the SQL secret store's (0007).
import ceso.db.backup_models  # noqa: E402
import ceso.db.schedule_models  # noqa: E402
import ceso.db.secret_models  # noqa: E402
import ceso.db.security_models  # noqa: E402, F401
