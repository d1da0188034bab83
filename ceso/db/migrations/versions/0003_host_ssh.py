"""SSH route settings of a host

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("ssh_port", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ssh_username", sa.String(128), nullable=True))
        batch.add_column(sa.Column("ssh_auth", sa.String(16), nullable=True))
        batch.add_column(sa.Column("ssh_host_key", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("ssh_host_key")
        batch.drop_column("ssh_auth")
        batch.drop_column("ssh_username")
        batch.drop_column("ssh_port")
