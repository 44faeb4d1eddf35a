"""vault: append-only audit log, signed checkpoints, wrapped scope keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PG_GUARD = """
CREATE OR REPLACE FUNCTION custodes_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("position"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "key_scopes",
        sa.Column("scope_id", sa.String(length=500), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=True),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("scope_id"),
    )
    op.create_index(op.f("ix_key_scopes_patient_id"), "key_scopes", ["patient_id"], unique=False)
    op.create_index(op.f("ix_key_scopes_kek_version"), "key_scopes", ["kek_version"], unique=False)
    # Append-only at the database too: the chain detects tampering, the trigger stops
    # the honest mistakes (an UPDATE with a missing WHERE).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        for table in ("audit_entries", "audit_checkpoints"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION custodes_audit_append_only()"
            )
    else:
        for table in ("audit_entries", "audit_checkpoints"):
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS custodes_audit_append_only() CASCADE")
    op.drop_index(op.f("ix_key_scopes_kek_version"), table_name="key_scopes")
    op.drop_index(op.f("ix_key_scopes_patient_id"), table_name="key_scopes")
    op.drop_table("key_scopes")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_entries")
