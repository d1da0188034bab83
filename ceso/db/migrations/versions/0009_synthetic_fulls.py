"""synthetic fulls: the points a full was merged from by backup prune

Revision ID: 0009_synthetic_fulls
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_synthetic_fulls"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backup_sets") as batch:
        batch.add_column(sa.Column("merged_from", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backup_sets") as batch:
        batch.drop_column("merged_from")
