"""response flags on accounts: a demanded step-up, a required MFA re-enrolment

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("step_up_demanded_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column(
                "mfa_enrolment_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("mfa_enrolment_required")
        batch.drop_column("step_up_demanded_at")
