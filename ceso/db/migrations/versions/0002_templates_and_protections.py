"""templates and VM protection marks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ceso.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("vm_uuid", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="unvalidated"),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("validated_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("host", "name", name="uq_templates_host_name"),
    )
    op.create_table(
        "vm_protections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("vm_name", sa.String(80), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("host", "vm_name", name="uq_vm_protections_host_vm"),
    )


def downgrade() -> None:
    op.drop_table("vm_protections")
    op.drop_table("templates")
