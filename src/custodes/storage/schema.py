"""The relational schema (SQLAlchemy Core). Alembic migrations create and evolve it.

All times are stored in UTC. Columns that hold PHI (names, addresses, birth dates,
quarantined raw lines) are marked in their comments; the database file or server must
be protected accordingly.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

access_events = sa.Table(
    "access_events",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("patient_id", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("resource_type", sa.String(100)),
    sa.Column("resource_id", sa.String(200)),
    sa.Column("application", sa.String(200)),
    sa.Column("workstation", sa.String(200)),
    sa.Column("source_ip", sa.String(100)),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("purpose_of_use", sa.String(20)),
    sa.Column("break_the_glass", sa.Boolean, nullable=False),
    sa.Column("session_id", sa.String(200)),
    sa.Column("source_format", sa.String(40)),
    sa.Column("source_file", sa.String(500)),
    sa.Column("source_line", sa.BigInteger),
)

signin_events = sa.Table(
    "signin_events",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("source_ip", sa.String(100)),
    sa.Column("device", sa.String(200)),
    sa.Column("application", sa.String(200)),
    sa.Column("session_id", sa.String(200)),
    sa.Column("mfa_method", sa.String(40)),
    sa.Column("source_format", sa.String(40)),
    sa.Column("source_file", sa.String(500)),
    sa.Column("source_line", sa.BigInteger),
)

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("staff_id", sa.String(200), primary_key=True),
    sa.Column("family_name", sa.String(200), comment="PHI"),
    sa.Column("given_names", sa.JSON, comment="PHI"),
    sa.Column("role", sa.String(100)),
    sa.Column("department", sa.String(200), index=True),
    sa.Column("address", sa.JSON, comment="PHI"),
    sa.Column("hire_date", sa.Date),
    sa.Column("termination_date", sa.Date),
    sa.Column("identifiers", sa.JSON),
)

patients = sa.Table(
    "patients",
    metadata,
    sa.Column("patient_id", sa.String(200), primary_key=True),
    sa.Column("family_name", sa.String(200), comment="PHI"),
    sa.Column("given_names", sa.JSON, comment="PHI"),
    sa.Column("address", sa.JSON, comment="PHI"),
    sa.Column("birth_date", sa.Date, comment="PHI"),
    sa.Column("deceased", sa.Boolean, nullable=False),
    sa.Column("deceased_at", sa.DateTime(timezone=True)),
    sa.Column("vip", sa.Boolean, nullable=False),
    sa.Column("staff_id", sa.String(200)),
    sa.Column("sensitive_categories", sa.JSON),
    sa.Column("identifiers", sa.JSON, comment="PHI"),
)

encounters = sa.Table(
    "encounters",
    metadata,
    sa.Column("encounter_id", sa.String(200), primary_key=True),
    sa.Column("patient_id", sa.String(200), nullable=False, index=True),
    sa.Column("department", sa.String(200)),
    sa.Column("start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end", sa.DateTime(timezone=True)),
    sa.Column("attending_id", sa.String(200), index=True),
    sa.Column("care_team", sa.JSON),
    sa.Column("encounter_class", sa.String(40)),
)

related_persons = sa.Table(
    "related_persons",
    metadata,
    sa.Column("related_id", sa.String(200), primary_key=True),
    sa.Column("patient_id", sa.String(200), nullable=False, index=True),
    sa.Column("relationship", sa.String(100)),
    sa.Column("family_name", sa.String(200), comment="PHI"),
    sa.Column("given_names", sa.JSON, comment="PHI"),
    sa.Column("address", sa.JSON, comment="PHI"),
    sa.Column("staff_id", sa.String(200), index=True),
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("department_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("part_of", sa.String(200)),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("source_format", sa.String(40), nullable=False),
    sa.Column("source_file", sa.String(500), nullable=False),
    sa.Column("line", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("raw", sa.Text, nullable=False, comment="PHI: the untouched input line"),
)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("read", sa.BigInteger, nullable=False, default=0),
    sa.Column("accepted", sa.BigInteger, nullable=False, default=0),
    sa.Column("quarantined", sa.BigInteger, nullable=False, default=0),
    sa.Column("duplicates", sa.BigInteger, nullable=False, default=0),
)

# Identity: accounts, passkeys, sessions, API tokens. No secret is stored in the clear:
# password hashes are Argon2id, TOTP secrets are sealed with the instance key, session
# ids and token secrets are kept as keyed digests, recovery codes as SHA-256 digests.
users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("totp_sealed", sa.LargeBinary),
    sa.Column("totp_enabled", sa.Boolean, nullable=False),
    sa.Column("totp_last_step", sa.BigInteger, nullable=False),
    sa.Column("recovery_hashes", sa.JSON, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("step_up_demanded_at", sa.DateTime(timezone=True)),
    sa.Column("mfa_enrolment_required", sa.Boolean, nullable=False, server_default=sa.false()),
)

passkeys = sa.Table(
    "passkeys",
    metadata,
    sa.Column("credential_id", sa.LargeBinary(1024), primary_key=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("sign_count", sa.BigInteger, nullable=False),
    sa.Column("backed_up", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("mfa_at", sa.DateTime(timezone=True)),
    sa.Column("mfa_method", sa.String(40)),
    sa.Column("verified_at", sa.DateTime(timezone=True)),
    sa.Column("source_ip", sa.String(100)),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(40), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("revoked", sa.Boolean, nullable=False),
)

# Alerts, cases and suppressions (correlate/). Patient ids are the pseudonymous ids of
# the access log; no names or free text beyond the detector's reasons.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("patient_id", sa.String(200)),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("department", sa.String(200)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("case_id", sa.String(260), index=True),
    sa.Column("suppressed_by", sa.String(40)),
    # The Sigma rules the event matched, the ranker's probability of misuse, and the
    # patient case ("one record, many users") the alert belongs to beside its user's.
    sa.Column("rules", sa.JSON),
    sa.Column("probability", sa.Float),
    sa.Column("patient_case_id", sa.String(260), index=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True)),
    sa.Index("ix_alerts_patient_id_time", "patient_id", "time"),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.String(260), primary_key=True),
    sa.Column("kind", sa.String(80), nullable=False),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("alert_ids", sa.JSON, nullable=False),
    sa.Column("patient_count", sa.Integer, nullable=False),
    sa.Column("tactics", sa.JSON, nullable=False),
    sa.Column("story", sa.JSON, nullable=False),
    sa.Column("prior_offences", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("verdict", sa.String(40)),
    sa.Column("verdict_note", sa.Text),
    sa.Column("closed_by", sa.String(64)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("opened_at", sa.DateTime(timezone=True)),
    # "user" (user_id is the subject) or "patient" (patient_id is; user_id is empty).
    sa.Column("subject", sa.String(20), nullable=False, server_default="user"),
    sa.Column("patient_id", sa.String(200)),
    sa.Column("user_count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("probability", sa.Float),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("suppression_id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# Every run of a response action, success or failure: appended, never updated.
response_runs = sa.Table(
    "response_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
    sa.Column("step_id", sa.String(40), nullable=False, index=True),
    sa.Column("case_id", sa.String(260), nullable=False, index=True),
    sa.Column("playbook", sa.String(100), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target_user", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("undo_at", sa.DateTime(timezone=True)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("undo_after_seconds", sa.Float),
)

# --- the record vault: audit log and keys (docs/vault.md) ------------------------------------

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    # Append-only: a trigger refuses UPDATE and DELETE (migration 0004).
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("body", sa.LargeBinary, nullable=False, comment="PHI: patient ids, BTG reasons"),
    sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("last_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
)

key_scopes = sa.Table(
    "key_scopes",
    metadata,
    sa.Column("scope_id", sa.String(500), primary_key=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("patient_id", sa.String(200), index=True),
    sa.Column("kek_version", sa.Integer, nullable=False, index=True),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
)

# --- the record vault: sealed FHIR records and their blind indexes (docs/vault.md) ------------

vault_records = sa.Table(
    "vault_records",
    metadata,
    # Every version of every record. Only ids, tier and time are in the clear; the
    # resource is ``ciphertext`` (AES-256-GCM) under the data key in ``wrapped_key``.
    sa.Column("resource_type", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patient_id", sa.String(200)),
    sa.Column("tier", sa.String(20), nullable=False),
    sa.Column("scope_id", sa.String(500), nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),
    # By patient, and by patient and type (a chart's Observations, a patient's Consents).
    sa.Index("ix_vault_records_patient", "patient_id", "resource_type", "current"),
    sa.Index("ix_vault_records_type_current", "resource_type", "current"),
    sa.Index("ix_vault_records_record_id", "record_id"),
)

vault_index = sa.Table(
    "vault_index",
    metadata,
    # Keyed HMAC digests of identifiers and names (keys/blind_index.py), never the values.
    sa.Column("purpose", sa.String(40), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("resource_type", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("patient_id", sa.String(200), index=True),
    sa.Index("ix_vault_index_record", "resource_type", "record_id"),
)
