"""agents, promotions and the hash-chained audit trail

Revision ID: 0004a
Revises: 0003
Create Date: 2026-11-26

The audit tables are append-only: triggers refuse UPDATE and DELETE of a
record on both databases (TRUNCATE, used by the test suite, is not a row
event). ``audit_head`` starts at the genesis hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ceso.db.types import UTCDateTime

revision = "0004a"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ceso_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("requested_s", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_promotions_agent_state", "promotions", ["agent", "state"])
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(48), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("client_addr", sa.String(64), nullable=True),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("host", sa.String(64), nullable=True),
        sa.Column("vm", sa.String(255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for column in ("at", "actor", "vm", "job_id"):
        op.create_index(f"ix_audit_records_{column}", "audit_records", [column])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)").bindparams(genesis=GENESIS)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(_PG_FUNCTION))
        op.execute(
            sa.text(
                "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records "
                "FOR EACH ROW EXECUTE FUNCTION ceso_audit_append_only()"
            )
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                sa.text(
                    f"CREATE TRIGGER audit_records_no_{action.lower()} BEFORE {action} ON audit_records "
                    "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END"
                )
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS ceso_audit_append_only()"))
    op.drop_table("audit_head")
    for column in ("job_id", "vm", "actor", "at"):
        op.drop_index(f"ix_audit_records_{column}", table_name="audit_records")
    op.drop_table("audit_records")
    op.drop_index("ix_promotions_agent_state", table_name="promotions")
    op.drop_table("promotions")
    op.drop_table("agents")
