"""the scheduler's record of fired schedule slots

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ceso.db.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("schedule", sa.String(200), nullable=False),
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.Column("leader", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("job_ids", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(500), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("schedule", "slot", name="uq_schedule_fires_schedule_slot"),
    )
    op.create_index("ix_schedule_fires_state", "schedule_fires", ["state"])


def downgrade() -> None:
    op.drop_index("ix_schedule_fires_state", table_name="schedule_fires")
    op.drop_table("schedule_fires")
