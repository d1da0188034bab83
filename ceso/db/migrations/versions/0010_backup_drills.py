"""backup drills: each restore drill of a set, its outcome, reason and timings

Revision ID: 0010_backup_drills
Revises: 0009_synthetic_fulls
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ceso.db.types import UTCDateTime

revision = "0010_backup_drills"
down_revision = "0009_synthetic_fulls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backup_drills",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("set_id", sa.String(36), nullable=False),
        sa.Column("vm", sa.String(80), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("network", sa.String(255), nullable=True),
        sa.Column("restore_s", sa.Float(), nullable=True),
        sa.Column("boot_s", sa.Float(), nullable=True),
        sa.Column("guest_ip", sa.String(64), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_backup_drills_set_id_finished_at", "backup_drills", ["set_id", "finished_at"])
    op.create_index(
        "ix_backup_drills_vm_status_finished_at", "backup_drills", ["vm", "status", "finished_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_backup_drills_vm_status_finished_at", table_name="backup_drills")
    op.drop_index("ix_backup_drills_set_id_finished_at", table_name="backup_drills")
    op.drop_table("backup_drills")
