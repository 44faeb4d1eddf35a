"""The example AuditEvents of the FHIR R4 specification and IHE BALP, read as a user expects.

The fixtures were typed in from the specification (see tests/fixtures/fhir_spec/README.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.ingest.fhir_audit import FhirAuditEventReader

SPEC = Path(__file__).parents[1] / "fixtures" / "fhir_spec"

# file -> (kind, expected fields or the start of the quarantine reason)
TABLE = [
    ("audit-event-example-login.json", "signin", {"user_id": "95", "kind": "login", "outcome": "success", "source_ip": "127.0.0.1"}),
    ("audit-event-example-logout.json", "signin", {"user_id": "95", "kind": "logout", "outcome": "success"}),
    ("audit-event-example-vread.json", "access", {"event_id": "example-rest", "user_id": "95", "patient_id": "example",
      "action": "vread", "resource_type": "Patient", "workstation": "Workstation1.ehr.familyclinic.com",
      "time": datetime(2013, 6, 20, 23, 42, 24, tzinfo=UTC)}),
    ("audit-event-example-disclosure.json", "access", {"user_id": "SomeIdiot@nowhere", "patient_id": "example",
      "action": "export", "purpose_of_use": "HMARKT"}),
    ("audit-event-example-media.json", "access", {"user_id": "95", "action": "export", "resource_type": "DocumentManifest"}),
    ("audit-event-example-pixQuery.json", "access", {"user_id": "95", "action": "search"}),
    ("audit-event-example-search.json", "quarantine", "no patient entity"),
    ("audit-event-example-error.json", "quarantine", "no patient entity"),
    ("audit-event-example.json", "quarantine", "no patient entity"),
    ("balp-patient-read.json", "access", {"user_id": "35fb1058-7f36-415b-b862-677a37c95f35", "patient_id": "ex-patient",
      "action": "read", "purpose_of_use": "TREAT", "break_the_glass": False,
      "source_ip": "2001:0db8:85a3:0000:0000:8a2e:0370:7334"}),
    ("balp-patient-create-etreat.json", "access", {"patient_id": "ex-patient", "action": "create",
      "purpose_of_use": "ETREAT", "break_the_glass": True}),
]  # fmt: skip


@pytest.mark.parametrize(("file", "kind", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_spec_example(file: str, kind: str, expected) -> None:
    (result,) = list(FhirAuditEventReader().read(SPEC / file))
    if kind == "quarantine":
        assert result.access.is_empty() and result.signins.is_empty()
        (record,) = result.quarantined
        assert record.reason.startswith(expected) and record.line == 1
        return
    frame = result.access if kind == "access" else result.signins
    assert frame.height == 1 and not result.quarantined
    row = frame.row(0, named=True)
    for key, value in expected.items():
        assert row[key] == value, key


def test_a_bundle_of_the_examples_reads_entry_by_entry(tmp_path: Path) -> None:
    import orjson

    resources = [orjson.loads((SPEC / f).read_bytes()) for f, _, _ in TABLE]
    for bundle_type in ("collection", "searchset", "transaction"):
        bundle = {
            "resourceType": "Bundle",
            "type": bundle_type,
            "entry": [{"resource": r} for r in resources],
        }
        path = tmp_path / f"{bundle_type}.json"
        path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
        results = list(FhirAuditEventReader().read(path))
        access = sum(r.access.height for r in results)
        signins = sum(r.signins.height for r in results)
        quarantined = [q for r in results for q in r.quarantined]
        assert (access, signins, len(quarantined)) == (6, 2, 3)
        assert sorted(q.line for q in quarantined) == [7, 8, 9]  # entry numbers
