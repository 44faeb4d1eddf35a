"""Audit: an append-only, hash-chained log with signed checkpoints; verify; FHIR export."""

from custodes.audit.chain import AuditEntry, chain, first_broken_link, link_hash
from custodes.audit.fhir import audit_event, audit_events_ndjson
from custodes.audit.log import AuditLog, VerifyReport, verify_columns
from custodes.audit.memory import MemoryAuditStore
from custodes.audit.merkle import merkle_root

__all__ = [
    "AuditEntry",
    "AuditLog",
    "MemoryAuditStore",
    "VerifyReport",
    "audit_event",
    "audit_events_ndjson",
    "chain",
    "first_broken_link",
    "link_hash",
    "merkle_root",
    "verify_columns",
]
