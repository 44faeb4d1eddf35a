"""initial schema: events, context, quarantine, ingest runs

Revision ID: 0001
Revises:
Create Date: 2026-11-23 16:25:39.648034
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("resource_type", sa.String(length=100), nullable=True),
        sa.Column("resource_id", sa.String(length=200), nullable=True),
        sa.Column("application", sa.String(length=200), nullable=True),
        sa.Column("workstation", sa.String(length=200), nullable=True),
        sa.Column("source_ip", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("purpose_of_use", sa.String(length=20), nullable=True),
        sa.Column("break_the_glass", sa.Boolean(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("source_format", sa.String(length=40), nullable=True),
        sa.Column("source_file", sa.String(length=500), nullable=True),
        sa.Column("source_line", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_access_events_patient_id"), "access_events", ["patient_id"], unique=False
    )
    op.create_index(op.f("ix_access_events_time"), "access_events", ["time"], unique=False)
    op.create_index(op.f("ix_access_events_user_id"), "access_events", ["user_id"], unique=False)
    op.create_table(
        "departments",
        sa.Column("department_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("part_of", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("department_id"),
    )
    op.create_table(
        "encounters",
        sa.Column("encounter_id", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attending_id", sa.String(length=200), nullable=True),
        sa.Column("care_team", sa.JSON(), nullable=True),
        sa.Column("encounter_class", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("encounter_id"),
    )
    op.create_index(
        op.f("ix_encounters_attending_id"), "encounters", ["attending_id"], unique=False
    )
    op.create_index(op.f("ix_encounters_patient_id"), "encounters", ["patient_id"], unique=False)
    op.create_table(
        "ingest_runs",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("read", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("quarantined", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=True, comment="PHI"),
        sa.Column("given_names", sa.JSON(), nullable=True, comment="PHI"),
        sa.Column("address", sa.JSON(), nullable=True, comment="PHI"),
        sa.Column("birth_date", sa.Date(), nullable=True, comment="PHI"),
        sa.Column("deceased", sa.Boolean(), nullable=False),
        sa.Column("deceased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("vip", sa.Boolean(), nullable=False),
        sa.Column("staff_id", sa.String(length=200), nullable=True),
        sa.Column("sensitive_categories", sa.JSON(), nullable=True),
        sa.Column("identifiers", sa.JSON(), nullable=True, comment="PHI"),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "quarantine",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("source_format", sa.String(length=40), nullable=False),
        sa.Column("source_file", sa.String(length=500), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False, comment="PHI: the untouched input line"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_quarantine_run_id"), "quarantine", ["run_id"], unique=False)
    op.create_table(
        "related_persons",
        sa.Column("related_id", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=False),
        sa.Column("relationship", sa.String(length=100), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True, comment="PHI"),
        sa.Column("given_names", sa.JSON(), nullable=True, comment="PHI"),
        sa.Column("address", sa.JSON(), nullable=True, comment="PHI"),
        sa.Column("staff_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("related_id"),
    )
    op.create_index(
        op.f("ix_related_persons_patient_id"), "related_persons", ["patient_id"], unique=False
    )
    op.create_index(
        op.f("ix_related_persons_staff_id"), "related_persons", ["staff_id"], unique=False
    )
    op.create_table(
        "signin_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("source_ip", sa.String(length=100), nullable=True),
        sa.Column("device", sa.String(length=200), nullable=True),
        sa.Column("application", sa.String(length=200), nullable=True),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("mfa_method", sa.String(length=40), nullable=True),
        sa.Column("source_format", sa.String(length=40), nullable=True),
        sa.Column("source_file", sa.String(length=500), nullable=True),
        sa.Column("source_line", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_signin_events_time"), "signin_events", ["time"], unique=False)
    op.create_index(op.f("ix_signin_events_user_id"), "signin_events", ["user_id"], unique=False)
    op.create_table(
        "staff",
        sa.Column("staff_id", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=True, comment="PHI"),
        sa.Column("given_names", sa.JSON(), nullable=True, comment="PHI"),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True, comment="PHI"),
        sa.Column("hire_date", sa.Date(), nullable=True),
        sa.Column("termination_date", sa.Date(), nullable=True),
        sa.Column("identifiers", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    op.create_index(op.f("ix_staff_department"), "staff", ["department"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_department"), table_name="staff")
    op.drop_table("staff")
    op.drop_index(op.f("ix_signin_events_user_id"), table_name="signin_events")
    op.drop_index(op.f("ix_signin_events_time"), table_name="signin_events")
    op.drop_table("signin_events")
    op.drop_index(op.f("ix_related_persons_staff_id"), table_name="related_persons")
    op.drop_index(op.f("ix_related_persons_patient_id"), table_name="related_persons")
    op.drop_table("related_persons")
    op.drop_index(op.f("ix_quarantine_run_id"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_table("patients")
    op.drop_table("ingest_runs")
    op.drop_index(op.f("ix_encounters_patient_id"), table_name="encounters")
    op.drop_index(op.f("ix_encounters_attending_id"), table_name="encounters")
    op.drop_table("encounters")
    op.drop_table("departments")
    op.drop_index(op.f("ix_access_events_user_id"), table_name="access_events")
    op.drop_index(op.f("ix_access_events_time"), table_name="access_events")
    op.drop_index(op.f("ix_access_events_patient_id"), table_name="access_events")
    op.drop_table("access_events")
