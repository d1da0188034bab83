"""merge the agents/audit and backups branches

Revision ID: 0005
Revises: 0004a, 0004b
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0005"
down_revision = ("0004a", "0004b")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the two branches touch different tables."""


def downgrade() -> None:
    """Nothing to change."""
