"""vault: sealed FHIR records (every version) and their blind indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_records",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=True),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("scope_id", sa.String(length=500), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "record_id", "version"),
    )
    op.create_index(
        "ix_vault_records_patient", "vault_records", ["patient_id", "resource_type", "current"], unique=False
    )
    op.create_index("ix_vault_records_type_current", "vault_records", ["resource_type", "current"], unique=False)
    op.create_index("ix_vault_records_record_id", "vault_records", ["record_id"], unique=False)
    op.create_table(
        "vault_index",
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("purpose", "digest", "resource_type", "record_id"),
    )
    op.create_index(op.f("ix_vault_index_patient_id"), "vault_index", ["patient_id"], unique=False)
    op.create_index("ix_vault_index_record", "vault_index", ["resource_type", "record_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_vault_index_record", table_name="vault_index")
    op.drop_index(op.f("ix_vault_index_patient_id"), table_name="vault_index")
    op.drop_table("vault_index")
    op.drop_index("ix_vault_records_record_id", table_name="vault_records")
    op.drop_index("ix_vault_records_type_current", table_name="vault_records")
    op.drop_index("ix_vault_records_patient", table_name="vault_records")
    op.drop_table("vault_records")
