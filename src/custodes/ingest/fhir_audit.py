"""FHIR ``AuditEvent`` (R4/R4B, IHE BALP shapes) as NDJSON or as a Bundle.

What is read, per AuditEvent:

- the user: the agent flagged ``requestor`` (else the first agent with a ``who``),
  ``who`` as a reference (``Practitioner/123``) or an identifier (its ``value``);
- the patient: an entity whose ``what`` references ``Patient/ID``, or an entity with
  role 1 (Patient, object-role) identified by an identifier;
- the action: ``subtype`` (a RESTful interaction or a DICOM event id), else ``action``;
- purpose of use: ``purposeOfEvent`` or the requestor's ``purposeOfUse`` (ETREAT and BTG
  mark break-the-glass);
- ``agent.network.address``: an IP address (type 2) or a machine name (type 1);
- the resource touched: the first entity that is not the patient;
- ``outcome`` (0, 4, 8, 12).

An AuditEvent of DICOM type 110114 (User Authentication) becomes a ``SignInEvent``
(subtype 110122 Login, 110123 Logout). Anything else without a patient is not an
access to a patient record, and goes to the quarantine with that reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import orjson
import polars as pl

from custodes.core.events import SIGNIN_EVENT_SCHEMA, Outcome, SignInKind
from custodes.core.ids import content_id
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import (
    DEFAULT_CHUNK_LINES,
    ChunkResult,
    EventReader,
    decode_raw,
    gc_paused,
    open_source,
)
from custodes.ingest.codes import ACTION_CODES, OUTCOME_CODES
from custodes.ingest.normalise import RAW_ACCESS_COLUMNS, normalise_access_columns

FORMAT_NAME = "fhir-auditevent"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_USER_AUTHENTICATION = "110114"
_SIGNIN_SUBTYPES = {"110122": SignInKind.LOGIN, "110123": SignInKind.LOGOUT}
_PATIENT_ROLE = "1"  # http://terminology.hl7.org/CodeSystem/object-role


# The decoding shapes: only the elements Custodes reads. ``gc=False`` because these
# objects never form cycles and the collector would otherwise rescan millions of them.
class _Identifier(msgspec.Struct, gc=False):
    system: str | None = None
    value: str | None = None


class _Reference(msgspec.Struct, gc=False):
    reference: str | None = None
    identifier: _Identifier | None = None
    display: str | None = None


class _Coding(msgspec.Struct, gc=False):
    system: str | None = None
    code: str | None = None


class _Concept(msgspec.Struct, gc=False):
    coding: list[_Coding] = []
    text: str | None = None


class _Network(msgspec.Struct, gc=False):
    address: str | None = None
    type: str | None = None


class _Agent(msgspec.Struct, gc=False):
    type: _Concept | None = None
    who: _Reference | None = None
    altId: str | None = None
    requestor: bool | None = None
    network: _Network | None = None
    purposeOfUse: list[_Concept] = []


class _Entity(msgspec.Struct, gc=False):
    what: _Reference | None = None
    type: _Coding | None = None
    role: _Coding | None = None


class _Source(msgspec.Struct, gc=False):
    observer: _Reference | None = None
    site: str | None = None


class _AuditEvent(msgspec.Struct, gc=False):
    resourceType: str
    id: str | None = None
    type: _Coding | None = None
    subtype: list[_Coding] = []
    action: str | None = None
    recorded: str | None = None
    outcome: str | None = None
    purposeOfEvent: list[_Concept] = []
    agent: list[_Agent] = []
    source: _Source | None = None
    entity: list[_Entity] = []


_DECODER = msgspec.json.Decoder(_AuditEvent)


def _reference_parts(reference: str | None) -> tuple[str | None, str | None]:
    """``http://x/fhir/Patient/12/_history/3`` -> (``Patient``, ``12``).

    A ``urn:uuid:X`` reference (Synthea, transaction Bundles) resolves to the plain id
    ``X``, as the context readers resolve it, so events and context ids line up.

    >>> _reference_parts("urn:uuid:0f1e"), _reference_parts("Patient/p1/_history/2")
    ((None, '0f1e'), ('Patient', 'p1'))
    """
    if not reference:
        return None, None
    if reference.startswith("urn:uuid:"):
        return None, reference[len("urn:uuid:") :]
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None, parts[-1]


def _who_id(ref: _Reference | None, alt_id: str | None) -> str | None:
    if ref is not None:
        if ref.reference:
            return _reference_parts(ref.reference)[1]
        if ref.identifier is not None and ref.identifier.value:
            return ref.identifier.value
    return alt_id


def _requestor(agents: list[_Agent]) -> _Agent | None:
    for agent in agents:
        if agent.requestor:
            return agent
    for agent in agents:
        if agent.who is not None:
            return agent
    return None


def _looks_like_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _network(agents: list[_Agent], user: _Agent | None) -> tuple[str | None, str | None]:
    """(source IP, workstation) from the agents' network addresses, user first."""
    source_ip = workstation = None
    ordered = ([user] if user is not None else []) + [a for a in agents if a is not user]
    for agent in ordered:
        net = agent.network
        if net is None or not net.address:
            continue
        if net.type == "2" or (net.type is None and _looks_like_ip(net.address)):
            source_ip = source_ip or net.address
        elif net.type in (None, "1"):
            workstation = workstation or net.address
    return source_ip, workstation


def _application(agents: list[_Agent], user: _Agent | None, source: _Source | None) -> str | None:
    """The software used: an Application agent (DICOM 110150), else the observer, else
    the client (Source Role, 110153) agent's name."""
    client = None
    for agent in agents:
        if agent is user or agent.who is None:
            continue
        codes = {c.code for c in agent.type.coding} if agent.type else set()
        if "110150" in codes:
            return agent.who.display or _who_id(agent.who, agent.altId)
        if "110153" in codes and client is None:
            client = agent.who.display
    if source is not None and source.observer is not None:
        return source.observer.display or _who_id(source.observer, None)
    return client


def _purpose(event: _AuditEvent, user: _Agent | None) -> str | None:
    for concept in [*event.purposeOfEvent, *(user.purposeOfUse if user else [])]:
        for coding in concept.coding:
            if coding.code:
                return coding.code
    return None


def _action_code(event: _AuditEvent) -> str | None:
    """The first known code among subtype, type and action, else the first given.

    IHE profiles put a transaction id in ``subtype`` (``ITI-9``) and the DICOM event
    (110112 Query, 110106 Export) in ``type``; BALP puts the RESTful interaction in
    ``subtype``.
    """
    candidates = [s.code for s in event.subtype if s.code]
    if event.type is not None and event.type.code:
        candidates.append(event.type.code)
    if event.action:
        candidates.append(event.action)
    for code in candidates:
        if code.lower() in ACTION_CODES:
            return code
    return candidates[0] if candidates else None


def _patient_and_resource(
    entities: list[_Entity],
) -> tuple[str | None, str | None, str | None]:
    patient_id = None
    resource: tuple[str | None, str | None] = (None, None)
    for entity in entities:
        what = entity.what
        if what is None:
            continue
        rtype, rid = _reference_parts(what.reference)
        is_patient_role = entity.role is not None and entity.role.code == _PATIENT_ROLE
        if patient_id is None and (rtype == "Patient" or (is_patient_role and rtype is None)):
            if rid is not None:
                patient_id = rid
            elif what.identifier is not None and what.identifier.value:
                patient_id = what.identifier.value
            if rtype == "Patient" and resource[0] is None:
                resource = (rtype, rid)
            continue
        if rtype is not None and (resource[0] is None or resource[0] == "Patient"):
            resource = (rtype, rid)
    return patient_id, resource[0], resource[1]


class FhirAuditEventReader(EventReader):
    """Reads FHIR AuditEvents from NDJSON (one resource a line) or a Bundle."""

    format_name = FORMAT_NAME

    def parse_lines(self, lines: Sequence[bytes], source_file: str) -> ChunkResult:
        access: dict[str, list] = {c: [] for c in (*RAW_ACCESS_COLUMNS, "source_line")}
        access_raw: list[bytes] = []
        signins: dict[str, list] = {c: [] for c in SIGNIN_EVENT_SCHEMA}
        quarantined: list[QuarantinedRecord] = []

        def reject(number: int, line: bytes, reason: str) -> None:
            quarantined.append(
                QuarantinedRecord(FORMAT_NAME, source_file, number, reason, decode_raw(line))
            )

        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = _DECODER.decode(line)
            except msgspec.ValidationError as err:
                reject(number, line, f"not a valid AuditEvent: {err}")
                continue
            except msgspec.DecodeError:
                reject(number, line, "malformed JSON")
                continue
            if event.resourceType != "AuditEvent":
                reject(number, line, "not an AuditEvent resource")
                continue
            event_id = event.id or content_id(line.strip())
            user = _requestor(event.agent)
            user_id = _who_id(user.who, user.altId) if user else None
            source_ip, workstation = _network(event.agent, user)
            application = _application(event.agent, user, event.source)
            if event.type is not None and event.type.code == _USER_AUTHENTICATION:
                kind = next(
                    (_SIGNIN_SUBTYPES[s.code] for s in event.subtype if s.code in _SIGNIN_SUBTYPES),
                    SignInKind.LOGIN,
                )
                signins["event_id"].append(event_id)
                signins["time"].append(event.recorded)
                signins["user_id"].append(user_id)
                signins["kind"].append(str(kind))
                signins["outcome"].append(event.outcome)
                signins["source_ip"].append(source_ip)
                signins["device"].append(workstation)
                signins["application"].append(application)
                signins["session_id"].append(None)
                signins["mfa_method"].append(None)
                signins["source_format"].append(FORMAT_NAME)
                signins["source_file"].append(source_file)
                signins["source_line"].append(number)
                continue
            patient_id, resource_type, resource_id = _patient_and_resource(event.entity)
            if patient_id is None:
                reject(number, line, "no patient entity: not an access to a patient record")
                continue
            action = _action_code(event)
            access["event_id"].append(event_id)
            access["time"].append(event.recorded)
            access["user_id"].append(user_id)
            access["patient_id"].append(patient_id)
            access["action"].append(action)
            access["resource_type"].append(resource_type)
            access["resource_id"].append(resource_id)
            access["application"].append(application)
            access["workstation"].append(workstation)
            access["source_ip"].append(source_ip)
            access["outcome"].append(event.outcome)
            access["purpose_of_use"].append(_purpose(event, user))
            access["session_id"].append(None)
            access["source_line"].append(number)
            access_raw.append(line)

        events, rejects = normalise_access_columns(
            access, source_format=FORMAT_NAME, source_file=source_file
        )
        for row, reason in rejects:
            reject(access["source_line"][row], access_raw[row], reason)
        signin_frame, signin_rejects = _normalise_signins(signins)
        for row, reason in signin_rejects:
            number = signins["source_line"][row]
            reject(number, lines[number - 1], reason)
        quarantined.sort(key=lambda q: q.line)
        return ChunkResult(access=events, signins=signin_frame, quarantined=quarantined)

    def read(
        self, path: Path, *, workers: int = 1, chunk_lines: int = DEFAULT_CHUNK_LINES
    ) -> Iterator[ChunkResult]:
        if _is_single_document(path):
            yield from self._read_document(path, chunk_lines)
        else:
            yield from super().read(path, workers=workers, chunk_lines=chunk_lines)

    def _read_document(self, path: Path, chunk_lines: int) -> Iterator[ChunkResult]:
        """A Bundle (collection, searchset, transaction, batch) or a lone resource.

        Entries are numbered from 1 and reported as line numbers.
        """
        with open_source(path) as handle:
            data = handle.read()
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            result = ChunkResult(lines_read=1)
            result.quarantined.append(
                QuarantinedRecord(
                    FORMAT_NAME, path.name, 1, "malformed JSON document", decode_raw(data)
                )
            )
            yield result
            return
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            # An entry without a resource is read as it stands, and so quarantined whole.
            records = [
                e["resource"] if isinstance(e, dict) and "resource" in e else e
                for e in document.get("entry") or []
            ]
        elif isinstance(document, list):
            records = document
        else:
            records = [document]
        lines = [orjson.dumps(r) for r in records]
        for start in range(0, len(lines), chunk_lines):
            chunk = lines[start : start + chunk_lines]
            with gc_paused():
                result = self.parse_lines(chunk, path.name)
            result.lines_read = len(chunk)
            yield result.rebased(start)


def _is_single_document(path: Path) -> bool:
    """True for a Bundle (on one line or pretty-printed), False for NDJSON.

    A pretty-printed document opens with a line holding only ``{`` or ``[``; NDJSON
    holds a whole resource on each line. A broken first line of NDJSON stays NDJSON,
    so it is quarantined alone and the rest of the file is read.
    """
    with open_source(path) as handle:
        first = handle.readline().removeprefix(b"\xef\xbb\xbf").strip()
    if first in (b"{", b"["):
        return True
    try:
        resource = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(resource, dict) and resource.get("resourceType") == "Bundle"


def _normalise_signins(raw: dict[str, list]) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    from custodes.ingest.normalise import parse_instants

    frame = pl.DataFrame(raw, schema={**SIGNIN_EVENT_SCHEMA, "time": pl.String()}).with_row_index(
        "_row"
    )
    outcome_keys = list(OUTCOME_CODES)
    frame = frame.with_columns(
        _time=parse_instants(pl.col("time"), None),
        _outcome=pl.col("outcome").replace_strict(
            outcome_keys, [OUTCOME_CODES[k] for k in outcome_keys], default=None
        ),
    )
    reason = (
        pl.when(pl.col("user_id").is_null())
        .then(pl.lit("missing required field user (agent.who)"))
        .when(pl.col("time").is_null())
        .then(pl.lit("missing required field recorded"))
        .when(pl.col("_time").is_null())
        .then(pl.lit("bad timestamp in recorded (expected ISO 8601 with a UTC offset)"))
        .when(pl.col("outcome").is_not_null() & pl.col("_outcome").is_null())
        .then(pl.lit("unknown outcome code"))
        .otherwise(None)
    )
    frame = frame.with_columns(_reason=reason)
    rejected = frame.filter(pl.col("_reason").is_not_null())
    accepted = (
        frame.filter(pl.col("_reason").is_null())
        .with_columns(
            time=pl.col("_time"),
            outcome=pl.col("_outcome").fill_null(pl.lit(str(Outcome.SUCCESS))),
        )
        .select(list(SIGNIN_EVENT_SCHEMA))
        .cast(SIGNIN_EVENT_SCHEMA)  # type: ignore[arg-type]
    )
    return accepted, list(
        zip(rejected["_row"].to_list(), rejected["_reason"].to_list(), strict=True)
    )


_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ACTION_LETTER = {
    "read": "R",
    "vread": "R",
    "search": "E",
    "create": "C",
    "update": "U",
    "delete": "D",
}
_OUTCOME_CODE = {
    "success": "0",
    "minor_failure": "4",
    "serious_failure": "8",
    "major_failure": "12",
}


def audit_event_resource(event) -> dict:  # event: custodes.core.events.AccessEvent
    """An ``AccessEvent`` as a FHIR R4 AuditEvent in the IHE BALP shape this reader takes.

    The reader reads it back to the same event (a test holds the round trip).
    """
    action = str(event.action)
    resource: dict = {
        "resourceType": "AuditEvent",
        "id": event.event_id,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [{"system": _INTERACTION, "code": action}],
        "action": _ACTION_LETTER.get(action, "E"),
        "recorded": event.time.isoformat().replace("+00:00", "Z"),
        "outcome": _OUTCOME_CODE[str(event.outcome)],
        "agent": [],
        "source": {"observer": {"display": event.application or "EHR"}},
        "entity": [
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                },
            }
        ],
    }
    if event.purpose_of_use:
        resource["purposeOfEvent"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": event.purpose_of_use,
                    }
                ]
            }
        ]
    user = {"who": {"reference": f"Practitioner/{event.user_id}"}, "requestor": True}
    if event.source_ip:
        user["network"] = {"address": event.source_ip, "type": "2"}
    resource["agent"].append(user)
    if event.workstation:
        resource["agent"].append(
            {
                "type": {"coding": [{"system": _DCM, "code": "110153"}]},
                "who": {"identifier": {"value": event.workstation}},
                "requestor": False,
                "network": {"address": event.workstation, "type": "1"},
            }
        )
    if event.resource_type and event.resource_type != "Patient":
        resource["entity"].append(
            {"what": {"reference": f"{event.resource_type}/{event.resource_id}"}}
        )
    return resource


def signin_audit_event_resource(event) -> dict:  # event: custodes.core.events.SignInEvent
    """A ``SignInEvent`` (login or logout) as a DICOM 110114 User Authentication AuditEvent."""
    code = "110123" if str(event.kind) == "logout" else "110122"
    user: dict = {"who": {"reference": f"Practitioner/{event.user_id}"}, "requestor": True}
    if event.source_ip:
        user["network"] = {"address": event.source_ip, "type": "2"}
    return {
        "resourceType": "AuditEvent",
        "id": event.event_id,
        "type": {"system": _DCM, "code": _USER_AUTHENTICATION, "display": "User Authentication"},
        "subtype": [{"system": _DCM, "code": code}],
        "action": "E",
        "recorded": event.time.isoformat().replace("+00:00", "Z"),
        "outcome": _OUTCOME_CODE[str(event.outcome)],
        "agent": [user],
        "source": {"observer": {"display": event.application or "EHR"}},
    }
