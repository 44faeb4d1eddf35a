"""case subjects and alert evidence: patient cases beside user cases, the rules an
alert's event matched, the ranker's probability, when each alert was stored

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("rules", sa.JSON()))
        batch.add_column(sa.Column("probability", sa.Float()))
        batch.add_column(sa.Column("patient_case_id", sa.String(260)))
        batch.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_alerts_patient_case_id", ["patient_case_id"])
        batch.create_index("ix_alerts_patient_id_time", ["patient_id", "time"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("subject", sa.String(20), nullable=False, server_default="user")
        )
        batch.add_column(sa.Column("patient_id", sa.String(200)))
        batch.add_column(
            sa.Column("user_count", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("probability", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("probability")
        batch.drop_column("user_count")
        batch.drop_column("patient_id")
        batch.drop_column("subject")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_patient_id_time")
        batch.drop_index("ix_alerts_patient_case_id")
        batch.drop_column("recorded_at")
        batch.drop_column("patient_case_id")
        batch.drop_column("probability")
        batch.drop_column("rules")
