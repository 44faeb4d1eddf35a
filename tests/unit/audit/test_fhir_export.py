"""What the vault's audit log exports, the ingest reader reads back as AccessEvents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from custodes.audit import AuditEntry, audit_events_ndjson, chain
from custodes.core.events import AccessEvent, Action, Outcome
from custodes.ingest.fhir_audit import FhirAuditEventReader

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

ENTRIES = [
    AuditEntry(T0, "dr-lee", Action.READ, role="clinician", patient_id="p1",
               resource_type="Observation", resource_id="o1", purpose_of_use="TREAT",
               source_ip="10.0.0.5"),
    AuditEntry(T0 + timedelta(minutes=1), "fd-kim", Action.SEARCH, role="front_desk",
               patient_id="p2", resource_type="Patient", resource_id="p2"),
    AuditEntry(T0 + timedelta(minutes=2), "nurse-ray", Action.READ, allowed=False,
               role="nurse", patient_id="p3", resource_type="Condition", resource_id="c9"),
    AuditEntry(T0 + timedelta(minutes=3), "dr-lee", Action.READ, role="clinician",
               patient_id="p4", resource_type="DocumentReference", resource_id="d2",
               break_the_glass=True, reason="unconscious, ED", review=True),
    AuditEntry(T0 + timedelta(minutes=4), "him-ann", Action.EXPORT, role="him",
               patient_id="p1", resource_type="Bundle", resource_id="b1"),
]  # fmt: skip


def exported() -> list[AccessEvent]:
    lines = list(audit_events_ndjson(chain(ENTRIES)))
    reader = FhirAuditEventReader(threads=1)
    try:
        result = reader.parse_lines([line.rstrip(b"\n") for line in lines], "audit.ndjson")
    finally:
        reader.close()
    assert result.quarantined == []
    return [AccessEvent.from_row(row) for row in result.access.iter_rows(named=True)]


def test_every_entry_round_trips_into_an_access_event():
    events = exported()
    assert [e.event_id for e in events] == [f"audit-{i}" for i in range(len(ENTRIES))]
    for entry, event in zip(ENTRIES, events, strict=True):
        assert event.user_id == entry.actor
        assert event.patient_id == entry.patient_id
        assert event.action == entry.action
        assert event.time == entry.time
        assert event.resource_type == entry.resource_type
        assert event.application == "Custodes vault"


def test_denial_and_break_the_glass_survive_the_round_trip():
    events = exported()
    assert events[0].purpose_of_use == "TREAT" and events[0].source_ip == "10.0.0.5"
    assert events[2].outcome is Outcome.MINOR_FAILURE
    assert events[3].break_the_glass and events[3].purpose_of_use == "BTG"
    assert not events[0].break_the_glass


def test_the_export_is_balp_shaped():
    resource = orjson.loads(next(audit_events_ndjson(chain(ENTRIES[:1]))))
    assert resource["type"]["code"] == "rest"
    assert resource["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
    assert resource["action"] == "R"
    assert resource["agent"][0]["requestor"] is True
    assert resource["entity"][0]["role"]["code"] == "1"
