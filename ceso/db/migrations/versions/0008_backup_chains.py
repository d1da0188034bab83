"""backup chains: full or incremental points, their parent, depth and per-disk changeIds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backup_sets") as batch:
        batch.add_column(sa.Column("scope", sa.String(12), nullable=False, server_default="full"))
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("chain_depth", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("change_ids", sa.Text(), nullable=True))
        batch.create_index("ix_backup_sets_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("backup_sets") as batch:
        batch.drop_index("ix_backup_sets_parent_id")
        batch.drop_column("change_ids")
        batch.drop_column("chain_depth")
        batch.drop_column("parent_id")
        batch.drop_column("scope")
