"""The audit log as FHIR R4 AuditEvent resources, in the IHE BALP shapes.

RESTful interactions (``type`` rest, ``subtype`` the interaction, ``action`` its CRUDE
letter), the user as the requesting agent, the patient as an entity of role 1, the
resource touched as a second entity, the purpose of use (``BTG`` for break-the-glass).
A denied attempt has outcome 4 (minor failure). ``custodes.ingest`` reads these back
into ``AccessEvent``s (a test holds the round trip): the vault's own audit stream
feeds the same detectors as a hospital's EHR logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC

import orjson

from custodes.audit.chain import AuditEntry
from custodes.core.events import Outcome
from custodes.core.ports import StoredAuditEntry

_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_ACTION_LETTER = {"read": "R", "vread": "R", "search": "E", "create": "C", "update": "U",
                  "delete": "D", "export": "R", "print": "R"}  # fmt: skip
_OUTCOME_CODE = {"success": "0", "minor_failure": "4", "serious_failure": "8", "major_failure": "12"}
OBSERVER = "Custodes vault"


def audit_event(position: int, entry: AuditEntry) -> dict:
    """One entry as an AuditEvent; its id is ``audit-<position>``, stable across exports."""
    outcome = entry.outcome if entry.allowed else Outcome.MINOR_FAILURE
    action = str(entry.action)
    user: dict = {"who": {"reference": f"Practitioner/{entry.actor}"}, "requestor": True}
    if entry.role:
        user["role"] = [{"text": entry.role}]
    if entry.source_ip:
        user["network"] = {"address": entry.source_ip, "type": "2"}
    resource: dict = {
        "resourceType": "AuditEvent",
        "id": f"audit-{position}",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": _INTERACTION, "code": action}],
        "action": _ACTION_LETTER.get(action, "E"),
        "recorded": entry.time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": _OUTCOME_CODE[str(outcome)],
        "agent": [user],
        "source": {"observer": {"display": OBSERVER}},
        "entity": [],
    }
    if not entry.allowed:
        resource["outcomeDesc"] = "access denied by policy"
    if entry.patient_id:
        resource["entity"].append({
            "what": {"reference": f"Patient/{entry.patient_id}"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
        })  # fmt: skip
    if entry.resource_type and entry.resource_type != "Patient" and entry.resource_id:
        resource["entity"].append({"what": {"reference": f"{entry.resource_type}/{entry.resource_id}"}})
    if not resource["entity"]:
        del resource["entity"]
    purpose = "BTG" if entry.break_the_glass else entry.purpose_of_use
    if purpose:
        resource["purposeOfEvent"] = [{"coding": [{"system": _ACT_REASON, "code": purpose}]}]
    return resource


def audit_events_ndjson(rows: Iterable[StoredAuditEntry]) -> Iterator[bytes]:
    """NDJSON lines (with their newline), one per stored entry, in position order."""
    for row in rows:
        yield orjson.dumps(audit_event(row.position, AuditEntry.from_body(row.body))) + b"\n"
