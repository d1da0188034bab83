"""SQL tables of backups: targets, backup sets and their files.

Imported at the end of :mod:`ceso.db.models` so Alembic and every process see
them; migration ``0004b`` creates them. The catalog mirrors what the targets
hold (``ceso backup import`` rebuilds it from their manifests); target
credentials live in the secret store, never here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from ceso.db.types import UTCDateTime, utcnow
from ceso.vm.names import MAX_VM_NAME  # ESXi's limit: the columns holding VM names follow it

__all__ = ["BACKUP_STATES", "DRILL_OUTCOMES", "BackupDrill", "BackupFile", "BackupSet", "BackupTarget"]

BACKUP_STATES = ("pending", "completed", "failed", "verified", "expired")


class BackupTarget(SQLModel, table=True):
    """Where backup sets are stored: type and non-secret settings (path, URL, host key pin)."""

    __tablename__ = "backup_targets"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(64), nullable=False, unique=True))
    type: str = Field(sa_column=Column(sa.String(16), nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(sa.JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    checked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class BackupSet(SQLModel, table=True):
    """One backup of one VM: the files of a set and its manifest, at one target."""

    __tablename__ = "backup_sets"
    __table_args__ = (
        sa.Index("ix_backup_sets_created_at", "created_at"),
        sa.Index("ix_backup_sets_vm_created_at", "vm", "created_at"),
        sa.Index("ix_backup_sets_target_created_at", "target", "created_at"),
        sa.Index("ix_backup_sets_status_created_at", "status", "created_at"),
        sa.Index("ix_backup_sets_parent_id", "parent_id"),
    )

    id: str = Field(sa_column=Column(sa.String(36), primary_key=True))
    vm: str = Field(sa_column=Column(sa.String(MAX_VM_NAME), nullable=False))
    host: str = Field(sa_column=Column(sa.String(64), nullable=False))
    target: str = Field(sa_column=Column(sa.String(64), nullable=False))
    path: str = Field(sa_column=Column(sa.String(512), nullable=False))
    status: str = Field(default="pending", sa_column=Column(sa.String(16), nullable=False))
    kind: str = Field(sa_column=Column(sa.String(8), nullable=False))  # hot | cold
    compression: str = Field(sa_column=Column(sa.String(8), nullable=False))
    level: int = Field(default=0, sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    key_id: str | None = Field(default=None, sa_column=Column(sa.String(32), nullable=True))
    job_id: str | None = Field(default=None, sa_column=Column(sa.String(36), nullable=True))
    logical_bytes: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, server_default="0"))
    stored_bytes: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, server_default="0"))
    manifest_sha256: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    manifest_schema: int = Field(default=1, sa_column=Column(sa.Integer, nullable=False, server_default="1"))
    retention_class: str | None = Field(default=None, sa_column=Column(sa.String(16), nullable=True))
    error: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # Chains of points (see ceso.backup.cbt): a full or an incremental on ``parent_id``, the
    # number of incrementals since its full, and each disk's CBT changeId at the backup snapshot
    # (JSON {"<disk index>": "<changeId>"}; null when the point was read without CBT).
    scope: str = Field(default="full", sa_column=Column(sa.String(12), nullable=False, server_default="full"))
    parent_id: str | None = Field(default=None, sa_column=Column(sa.String(36), nullable=True))
    chain_depth: int = Field(default=0, sa_column=Column(sa.Integer, nullable=False, server_default="0"))
    change_ids: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    # A synthetic full (made by ``backup prune``): the ids of the points it was merged from,
    # oldest first (JSON list); it stands for the last of them. Null for any other point.
    merged_from: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))


class BackupFile(SQLModel, table=True):
    """One stored file of a set, with raw and stored sizes and hashes."""

    __tablename__ = "backup_files"
    __table_args__ = (sa.UniqueConstraint("set_id", "name", name="uq_backup_files_set_name"),)

    id: int | None = Field(default=None, primary_key=True)
    set_id: str = Field(
        sa_column=Column(sa.String(36), sa.ForeignKey("backup_sets.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(sa_column=Column(sa.String(255), nullable=False))
    role: str = Field(sa_column=Column(sa.String(16), nullable=False))
    source: str = Field(sa_column=Column(sa.String(512), nullable=False))
    stored_name: str = Field(sa_column=Column(sa.String(255), nullable=False))
    logical_bytes: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    stored_bytes: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    sha256_raw: str = Field(sa_column=Column(sa.String(64), nullable=False))
    sha256_stored: str = Field(sa_column=Column(sa.String(64), nullable=False))


DRILL_OUTCOMES = ("passed", "failed")


class BackupDrill(SQLModel, table=True):
    """One restore drill of a set (``backup drill``): restored as a throwaway VM, booted, removed.

    Kept when the set is pruned or deleted (no foreign key): the last successful drill of a VM
    is what its alert reads (``ceso_backup_last_drill_success_timestamp_seconds``).
    """

    __tablename__ = "backup_drills"
    __table_args__ = (
        sa.Index("ix_backup_drills_set_id_finished_at", "set_id", "finished_at"),
        sa.Index("ix_backup_drills_vm_status_finished_at", "vm", "status", "finished_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    set_id: str = Field(sa_column=Column(sa.String(36), nullable=False))
    vm: str = Field(sa_column=Column(sa.String(MAX_VM_NAME), nullable=False))
    host: str = Field(sa_column=Column(sa.String(64), nullable=False))
    job_id: str = Field(sa_column=Column(sa.String(36), nullable=False))
    status: str = Field(sa_column=Column(sa.String(8), nullable=False))  # passed | failed
    reason: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    network: str | None = Field(default=None, sa_column=Column(sa.String(255), nullable=True))
    restore_s: float | None = Field(default=None, sa_column=Column(sa.Float, nullable=True))
    boot_s: float | None = Field(default=None, sa_column=Column(sa.Float, nullable=True))
    guest_ip: str | None = Field(default=None, sa_column=Column(sa.String(64), nullable=True))
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
