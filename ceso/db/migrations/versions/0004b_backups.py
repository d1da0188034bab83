"""backup targets, backup sets and their files

Revision ID: 0004b
Revises: 0003
Create Date: 2026-11-26

A branch beside 0004a (agents and audit); both are heads until merged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ceso.db.types import UTCDateTime

revision = "0004b"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backup_targets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "backup_sets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("vm", sa.String(80), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("compression", sa.String(8), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("logical_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("manifest_schema", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("retention_class", sa.String(16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_backup_sets_created_at", "backup_sets", ["created_at"])
    op.create_index("ix_backup_sets_vm_created_at", "backup_sets", ["vm", "created_at"])
    op.create_index("ix_backup_sets_target_created_at", "backup_sets", ["target", "created_at"])
    op.create_index("ix_backup_sets_status_created_at", "backup_sets", ["status", "created_at"])
    op.create_table(
        "backup_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "set_id", sa.String(36), sa.ForeignKey("backup_sets.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("stored_name", sa.String(255), nullable=False),
        sa.Column("logical_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256_raw", sa.String(64), nullable=False),
        sa.Column("sha256_stored", sa.String(64), nullable=False),
        sa.UniqueConstraint("set_id", "name", name="uq_backup_files_set_name"),
    )


def downgrade() -> None:
    op.drop_table("backup_files")
    for name in ("status", "target", "vm"):
        op.drop_index(f"ix_backup_sets_{name}_created_at", table_name="backup_sets")
    op.drop_index("ix_backup_sets_created_at", table_name="backup_sets")
    op.drop_table("backup_sets")
    op.drop_table("backup_targets")
