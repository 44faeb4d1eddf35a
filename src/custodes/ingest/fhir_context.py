"""FHIR R4 context resources, as NDJSON or as one JSON document, to ``core`` entities.

A file is NDJSON (one resource a line) or one JSON document: a Bundle of any type
(collection, searchset, transaction, batch) or a lone resource; plain or gzip.
Quarantine line numbers are physical lines in NDJSON and 1-based entry numbers in a
Bundle.

What is read:

================= ============== ==========================================================
resource          becomes        from
================= ============== ==========================================================
Practitioner      StaffMember    id, name, address, identifier (as ``system|value``)
PractitionerRole  (merged)       ``code`` (text, else display, else code; lower-cased) as the
                                 role, ``organization`` as the department, onto the
                                 StaffMember of ``practitioner`` (created when the file
                                 holds no such Practitioner)
Patient           Patient        id, name, address (with Synthea's geolocation extension),
                                 birthDate, deceased[x], identifier; ``meta.security`` for
                                 VIP and sensitive categories; an identifier of system
                                 ``urn:custodes:staff`` as the staff id
Encounter         Encounter      subject, period, serviceProvider (else the first location)
                                 as department, class, participants (ATND or PPRF, else
                                 the first, as attending; all as the care team)
CareTeam          (merged)       ``participant.member`` onto the care team of ``encounter``
RelatedPerson     RelatedPerson  patient, relationship (first code), name, address, staff id
Organization      Department     id, name, partOf
================= ============== ==========================================================

Other resource types are counted in ``records_read`` and ``skipped``.

References may be relative (``Patient/12``), absolute (``http://x/fhir/Patient/12``,
``.../_history/3``), ``urn:uuid:X`` (resolved through the Bundle's ``fullUrl``s, else to
``X``: Synthea's fullUrl is ``urn:uuid:`` and the resource id) or, failing a reference,
an ``identifier`` (its value). A Bundle entry whose resource has no id takes the uuid of
its ``urn:uuid`` fullUrl, as a transaction's POST entries do.

Choices where FHIR allows more than an entity holds:

- a name: the ``official`` one, else the first not ``old`` or ``maiden``, else the first;
  an address: the ``home`` one, else the first not ``old``, else the first;
- a partial date (``1970``, ``1970-03``) is valid FHIR but not a day: ``birth_date`` and
  ``deceased_at`` stay empty rather than guessed, and an Encounter needs a day at least;
- a date-time with a time needs a UTC offset (FHIR requires one); a date alone is
  midnight UTC;
- coordinates that are not numbers in range are left out, the address kept;
- several PractitionerRoles for one practitioner: the first active one sets the role
  and the department, later ones fill only what is still empty;
- an Encounter participant is staff when it references a Practitioner, or a
  PractitionerRole of this file (resolved to its practitioner);
- an id seen twice in a file: the first is kept, the repeat quarantined.

Quarantined, with a reason that never quotes a value (it may be PHI): lines that are
not JSON or not a resource, resources without an id, a Patient or Encounter without
what it needs (subject, period.start), bad dates, elements of the wrong shape, an
Encounter ``entered-in-error``, a CareTeam whose encounter is not in the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from custodes.core.entities import (
    Address,
    Department,
    Encounter,
    Patient,
    RelatedPerson,
    StaffMember,
)
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import decode_raw, open_source
from custodes.ingest.context_batch import ContextBatch

FORMAT_NAME = "fhir-context"

#: The identifier system that links a Patient or RelatedPerson to a staff record.
STAFF_IDENTIFIER_SYSTEM = "urn:custodes:staff"

#: ``Encounter.class`` codes (v3 ActEncounterCode) to words; other codes are lower-cased.
ENCOUNTER_CLASS_WORDS: dict[str, str] = {
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "EMER": "emergency",
    "AMB": "ambulatory",
}

#: ``meta.security`` codes (v3 ActCode, information sensitivity) to sensitive categories.
SENSITIVE_CATEGORY_CODES: dict[str, str] = {
    "HIV": "hiv",
    "ETH": "substance-use",
    "ETHUD": "substance-use",  # alcohol use disorder, a specialisation of ETH
    "OPIOIDUD": "substance-use",  # opioid use disorder, a specialisation of ETH
    "PSY": "mental-health",
    "PSYTHPN": "mental-health",
    "SEX": "reproductive",
    "SDV": "reproductive",
    "GDIS": "genetics",
}

#: ``meta.security`` codes that mark a VIP: the word itself, celebrity and employee
#: sensitivity (v3 CEL, EMP), and the restricted confidentialities (v3 R, V).
_VIP_CODES = frozenset({"VIP", "CEL", "EMP"})
_VIP_CONFIDENTIALITY = frozenset({"R", "V"})
_CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_GEOLOCATION = "http://hl7.org/fhir/StructureDefinition/geolocation"
_ATTENDING_TYPES = frozenset({"ATND", "PPRF"})
_STAFF_TYPES = (None, "Practitioner")

_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")
_NAIVE_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


class _Malformed(Exception):
    """A resource that cannot be used; the message is the quarantine reason (no values)."""


@dataclass(slots=True)
class _Item:
    """One resource (or what stands in its place) with where it was found."""

    number: int
    resource: dict[str, Any] | None
    source: Any  # the NDJSON line (bytes), or the Bundle entry
    reason: str | None = None  # set when the item is already known to be unusable
    fallback_id: str | None = None  # the uuid of a ``urn:uuid`` fullUrl

    def raw(self) -> str:
        if isinstance(self.source, bytes):
            return decode_raw(self.source)
        return orjson.dumps(self.source).decode()


def read_fhir_context(path: Path) -> ContextBatch:
    """Read FHIR context resources from an NDJSON file or a JSON document.

    Parameters
    ----------
    path: the file, plain or gzip.

    Returns
    -------
    The entities, the quarantined resources and the counts.
    """
    with open_source(path) as handle:
        data = handle.read()
    items, full_urls = _split(data)
    return _ContextMapper(path.name, full_urls).map(items)


# --- from bytes to items ----------------------------------------------------------------


def _split(data: bytes) -> tuple[list[_Item], dict[str, tuple[str | None, str]]]:
    """The items of a file, and the Bundle's fullUrl -> (type, id) map."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        return [], {}
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _split_lines(data), {}
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return _split_bundle(document, data)
    if isinstance(document, dict):
        return [_Item(1, document, data)], {}
    return [_Item(1, None, data, "not a FHIR resource or Bundle (not a JSON object)")], {}


def _split_lines(data: bytes) -> list[_Item]:
    """NDJSON, or a JSON document too broken to parse (then one item, line 1)."""
    items: list[_Item] = []
    any_object = False
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            items.append(_Item(number, None, line, "malformed JSON"))
            continue
        if isinstance(value, dict):
            any_object = True
            items.append(_Item(number, value, line))
        else:
            items.append(_Item(number, None, line, "not a FHIR resource (not a JSON object)"))
    if len(items) > 1 and not any_object:
        # No line stands alone as a JSON object: this is one JSON document, broken.
        return [_Item(1, None, data, "malformed JSON document")]
    return items


def _split_bundle(
    bundle: dict[str, Any], data: bytes
) -> tuple[list[_Item], dict[str, tuple[str | None, str]]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        return [_Item(1, None, data, "Bundle.entry is not a list")], {}
    items: list[_Item] = []
    full_urls: dict[str, tuple[str | None, str]] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            items.append(_Item(number, None, entry, "Bundle entry is not an object"))
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            items.append(_Item(number, None, entry, "Bundle entry without a resource"))
            continue
        full_url = entry.get("fullUrl")
        fallback_id = None
        if isinstance(full_url, str) and full_url:
            if full_url.startswith("urn:uuid:"):
                fallback_id = full_url.removeprefix("urn:uuid:")
            resource_id = resource.get("id")
            resolved_id = resource_id if isinstance(resource_id, str) and resource_id else None
            resolved_id = resolved_id or fallback_id
            rtype = resource.get("resourceType")
            if resolved_id:
                full_urls[full_url] = (rtype if isinstance(rtype, str) else None, resolved_id)
        items.append(_Item(number, resource, entry, fallback_id=fallback_id))
    return items, full_urls


# --- from items to entities -------------------------------------------------------------


@dataclass(slots=True)
class _RoleAssignment:
    practitioner_id: str
    role: str | None
    department: str | None
    active: bool


@dataclass(slots=True)
class _CareTeamMembers:
    item: _Item
    encounter_id: str
    members: tuple[str, ...]


class _ContextMapper:
    """Maps the items of one file; merges roles and care teams once all are read."""

    def __init__(self, source_file: str, full_urls: dict[str, tuple[str | None, str]]) -> None:
        self.source_file = source_file
        self.full_urls = full_urls
        self.role_practitioner: dict[str, str] = {}
        self.staff: dict[str, StaffMember] = {}
        self.patients: dict[str, Patient] = {}
        self.encounters: dict[str, Encounter] = {}
        self.related: dict[str, RelatedPerson] = {}
        self.departments: dict[str, Department] = {}
        self.roles: list[_RoleAssignment] = []
        self.care_teams: list[_CareTeamMembers] = []
        self.quarantined: list[QuarantinedRecord] = []
        self.skipped = 0
        self.handlers: dict[str, Callable[[_Item, dict[str, Any], str], None]] = {
            "Practitioner": self._practitioner,
            "PractitionerRole": self._practitioner_role,
            "Patient": self._patient,
            "Encounter": self._encounter,
            "CareTeam": self._care_team,
            "RelatedPerson": self._related_person,
            "Organization": self._organization,
        }

    def map(self, items: list[_Item]) -> ContextBatch:
        # Encounters may name a PractitionerRole that comes later in the file.
        self._index_roles(items)
        for item in items:
            self._map_one(item)
        self._merge_roles()
        self._merge_care_teams()
        self.quarantined.sort(key=lambda q: q.line)
        return ContextBatch(
            staff=list(self.staff.values()),
            patients=list(self.patients.values()),
            encounters=list(self.encounters.values()),
            related_persons=list(self.related.values()),
            departments=list(self.departments.values()),
            quarantined=self.quarantined,
            records_read=len(items),
            skipped=self.skipped,
        )

    def _quarantine(self, item: _Item, reason: str) -> None:
        self.quarantined.append(
            QuarantinedRecord(FORMAT_NAME, self.source_file, item.number, reason, item.raw())
        )

    def _index_roles(self, items: list[_Item]) -> None:
        for item in items:
            resource = item.resource
            if resource is None or resource.get("resourceType") != "PractitionerRole":
                continue
            try:
                role_id = _resource_id(resource, item.fallback_id, "PractitionerRole")
                rtype, practitioner_id = self._reference(
                    resource.get("practitioner"), "PractitionerRole.practitioner"
                )
            except _Malformed:
                continue  # quarantined with its reason when mapped
            if practitioner_id is not None and rtype in _STAFF_TYPES:
                self.role_practitioner.setdefault(role_id, practitioner_id)

    def _map_one(self, item: _Item) -> None:
        if item.reason is not None or item.resource is None:
            self._quarantine(item, item.reason or "not a FHIR resource")
            return
        rtype = item.resource.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            self._quarantine(item, "not a FHIR resource (no resourceType)")
            return
        if rtype == "Bundle":
            self._quarantine(item, "a Bundle inside a file of resources: give it its own file")
            return
        handler = self.handlers.get(rtype)
        if handler is None:
            self.skipped += 1
            return
        try:
            handler(item, item.resource, _resource_id(item.resource, item.fallback_id, rtype))
        except _Malformed as err:
            self._quarantine(item, str(err))
        except (TypeError, ValueError, AttributeError, KeyError):
            # A shape the element readers did not foresee: one resource must not stop a file.
            self._quarantine(item, f"malformed {rtype}: an element has an unexpected shape")

    # --- references

    def _reference(self, node: Any, where: str) -> tuple[str | None, str | None]:
        """(type, id) of a Reference; (None, None) when absent or not resolvable."""
        if node is None:
            return None, None
        if not isinstance(node, dict):
            raise _Malformed(f"{where} is not a Reference")
        declared = _string(node, "type", where)
        if declared:
            # A type may be given as its StructureDefinition URL.
            declared = declared.rsplit("/", 1)[-1]
        reference = _string(node, "reference", where)
        if reference:
            if reference in self.full_urls:
                rtype, rid = self.full_urls[reference]
                return rtype or declared, rid
            if reference.startswith("#") or "?" in reference:
                return declared, None  # contained or conditional: nothing to resolve to
            if reference.startswith(("urn:uuid:", "urn:oid:")):
                return declared, reference.split(":", 2)[2] or None
            parts = reference.split("/")
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            if len(parts) >= 2:
                return parts[-2], parts[-1] or None
            return declared, parts[-1] or None
        identifier = _object(node, "identifier", where)
        if identifier is not None:
            return declared, _string(identifier, "value", f"{where}.identifier")
        return declared, None

    def _staff_id(self, node: Any, where: str) -> str | None:
        rtype, rid = self._reference(node, where)
        if rid is None:
            return None
        if rtype == "PractitionerRole":
            return self.role_practitioner.get(rid)
        return rid if rtype in _STAFF_TYPES else None

    def _id_of(self, node: Any, where: str, expected: str) -> str | None:
        """The id a Reference points to, when it points to a resource of ``expected`` type."""
        rtype, rid = self._reference(node, where)
        if rtype not in (None, expected):
            raise _Malformed(f"{where} does not reference a {expected}")
        return rid

    # --- resources

    def _practitioner(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        if resource_id in self.staff:
            raise _Malformed("duplicate Practitioner id in this file; the first is kept")
        family, given = _human_name(resource, "Practitioner")
        self.staff[resource_id] = StaffMember(
            staff_id=resource_id,
            family_name=family,
            given_names=given,
            address=_address(resource, "Practitioner"),
            identifiers=_identifiers(resource, "Practitioner"),
        )

    def _practitioner_role(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        rtype, practitioner_id = self._reference(
            resource.get("practitioner"), "PractitionerRole.practitioner"
        )
        if practitioner_id is None:
            raise _Malformed("PractitionerRole without a practitioner reference")
        if rtype not in _STAFF_TYPES:
            raise _Malformed("PractitionerRole.practitioner does not reference a Practitioner")
        department = self._id_of(
            resource.get("organization"), "PractitionerRole.organization", "Organization"
        )
        active = resource.get("active", True)
        if not isinstance(active, bool):
            raise _Malformed("PractitionerRole.active is not a boolean")
        self.roles.append(
            _RoleAssignment(practitioner_id, _role_word(resource), department, active)
        )

    def _patient(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        if resource_id in self.patients:
            raise _Malformed("duplicate Patient id in this file; the first is kept")
        family, given = _human_name(resource, "Patient")
        deceased, deceased_at = _deceased(resource)
        security = _security_codes(resource, "Patient")
        categories = [
            SENSITIVE_CATEGORY_CODES[c] for _, c in security if c in SENSITIVE_CATEGORY_CODES
        ]
        self.patients[resource_id] = Patient(
            patient_id=resource_id,
            family_name=family,
            given_names=given,
            address=_address(resource, "Patient"),
            birth_date=_fhir_date(resource.get("birthDate"), "Patient.birthDate"),
            deceased=deceased,
            deceased_at=deceased_at,
            vip=any(_is_vip(system, code) for system, code in security),
            staff_id=_staff_identifier(resource, "Patient"),
            sensitive_categories=tuple(dict.fromkeys(categories)),
            identifiers=_identifiers(resource, "Patient"),
        )

    def _encounter(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        if resource_id in self.encounters:
            raise _Malformed("duplicate Encounter id in this file; the first is kept")
        if resource.get("status") == "entered-in-error":
            raise _Malformed("Encounter entered-in-error: not a reason to see the patient")
        patient_id = self._id_of(resource.get("subject"), "Encounter.subject", "Patient")
        if patient_id is None:
            raise _Malformed("Encounter without a subject")
        period = _object(resource, "period", "Encounter") or {}
        if period.get("start") is None:
            raise _Malformed("Encounter without period.start")
        start = _fhir_date_time(period["start"], "Encounter.period.start")
        if start is None:
            raise _Malformed("Encounter.period.start is less precise than a day")
        end = _fhir_date_time(period.get("end"), "Encounter.period.end")
        if end is not None and end < start:
            raise _Malformed("Encounter.period.end is before period.start")
        attending, care_team = self._participants(resource)
        self.encounters[resource_id] = Encounter(
            encounter_id=resource_id,
            patient_id=patient_id,
            start=start,
            department=self._encounter_department(resource),
            end=end,
            attending_id=attending,
            care_team=care_team,
            encounter_class=_encounter_class(resource),
        )

    def _participants(self, resource: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
        attending = None
        staff_ids: list[str] = []
        for participant in _objects(resource, "participant", "Encounter"):
            staff_id = self._staff_id(
                participant.get("individual"), "Encounter.participant.individual"
            )
            if staff_id is None:
                continue
            staff_ids.append(staff_id)
            types = _objects(participant, "type", "Encounter.participant")
            codes = {code for concept in types for _, code in _codings(concept, "type")}
            if attending is None and codes & _ATTENDING_TYPES:
                attending = staff_id
        care_team = tuple(dict.fromkeys(staff_ids))
        return attending or (care_team[0] if care_team else None), care_team

    def _encounter_department(self, resource: dict[str, Any]) -> str | None:
        department = self._id_of(
            resource.get("serviceProvider"), "Encounter.serviceProvider", "Organization"
        )
        if department is not None:
            return department
        for location in _objects(resource, "location", "Encounter"):
            location_id = self._id_of(
                location.get("location"), "Encounter.location.location", "Location"
            )
            if location_id is not None:
                return location_id
        return None

    def _care_team(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        encounter_id = self._id_of(resource.get("encounter"), "CareTeam.encounter", "Encounter")
        if encounter_id is None:
            raise _Malformed("CareTeam without an encounter: only encounter care teams are read")
        members = [
            self._staff_id(p.get("member"), "CareTeam.participant.member")
            for p in _objects(resource, "participant", "CareTeam")
        ]
        members_present = tuple(dict.fromkeys(m for m in members if m is not None))
        self.care_teams.append(_CareTeamMembers(item, encounter_id, members_present))

    def _related_person(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        if resource_id in self.related:
            raise _Malformed("duplicate RelatedPerson id in this file; the first is kept")
        patient_id = self._id_of(resource.get("patient"), "RelatedPerson.patient", "Patient")
        if patient_id is None:
            raise _Malformed("RelatedPerson without a patient")
        family, given = _human_name(resource, "RelatedPerson")
        self.related[resource_id] = RelatedPerson(
            related_id=resource_id,
            patient_id=patient_id,
            relationship=_relationship(resource),
            family_name=family,
            given_names=given,
            address=_address(resource, "RelatedPerson"),
            staff_id=_staff_identifier(resource, "RelatedPerson"),
        )

    def _organization(self, item: _Item, resource: dict[str, Any], resource_id: str) -> None:
        if resource_id in self.departments:
            raise _Malformed("duplicate Organization id in this file; the first is kept")
        self.departments[resource_id] = Department(
            department_id=resource_id,
            name=_string(resource, "name", "Organization"),
            part_of=self._id_of(resource.get("partOf"), "Organization.partOf", "Organization"),
        )

    # --- merges, once every resource is read

    def _merge_roles(self) -> None:
        # Active roles first, so an ended role does not name today's job (sort is stable).
        for assignment in sorted(self.roles, key=lambda a: not a.active):
            member = self.staff.get(assignment.practitioner_id)
            if member is None:
                member = StaffMember(staff_id=assignment.practitioner_id)
            self.staff[assignment.practitioner_id] = replace(
                member,
                role=member.role or assignment.role,
                department=member.department or assignment.department,
            )

    def _merge_care_teams(self) -> None:
        for team in self.care_teams:
            encounter = self.encounters.get(team.encounter_id)
            if encounter is None:
                self._quarantine(team.item, "CareTeam refers to an encounter not in this file")
                continue
            care_team = tuple(dict.fromkeys((*encounter.care_team, *team.members)))
            self.encounters[team.encounter_id] = replace(encounter, care_team=care_team)


# --- element readers: each raises _Malformed naming the element, never its value ---------


def _resource_id(resource: dict[str, Any], fallback_id: str | None, rtype: str) -> str:
    resource_id = resource.get("id")
    if resource_id is None or resource_id == "":
        if fallback_id:
            return fallback_id
        raise _Malformed(f"{rtype} without an id")
    if not isinstance(resource_id, str):
        raise _Malformed(f"{rtype}.id is not a string")
    return resource_id


def _object(node: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = node.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _Malformed(f"{where}.{key} is not an object")


def _objects(node: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Malformed(f"{where}.{key} is not a list of objects")
    return value


def _string(node: dict[str, Any], key: str, where: str) -> str | None:
    value = node.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise _Malformed(f"{where}.{key} is not a string")


def _strings(node: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = node.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f"{where}.{key} is not a list of strings")
    return tuple(v for v in value if v)


def _codings(concept: dict[str, Any], where: str) -> list[tuple[str | None, str]]:
    """(system, code) of a CodeableConcept's codings that have a code."""
    pairs = []
    for coding in _objects(concept, "coding", where):
        code = _string(coding, "code", f"{where}.coding")
        if code:
            pairs.append((_string(coding, "system", f"{where}.coding"), code))
    return pairs


def _preferred(
    items: list[dict[str, Any]], best: str, avoid: frozenset[str]
) -> dict[str, Any] | None:
    """The item whose ``use`` is ``best``, else the first not to ``avoid``, else the first."""
    for candidate in items:
        if candidate.get("use") == best:
            return candidate
    for candidate in items:
        if candidate.get("use") not in avoid:
            return candidate
    return items[0] if items else None


def _human_name(resource: dict[str, Any], rtype: str) -> tuple[str | None, tuple[str, ...]]:
    where = f"{rtype}.name"
    name = _preferred(_objects(resource, "name", rtype), "official", frozenset({"old", "maiden"}))
    if name is None:
        return None, ()
    return _string(name, "family", where), _strings(name, "given", where)


def _address(resource: dict[str, Any], rtype: str) -> Address | None:
    where = f"{rtype}.address"
    address = _preferred(_objects(resource, "address", rtype), "home", frozenset({"old"}))
    if address is None:
        return None
    lines = _strings(address, "line", where)
    latitude, longitude = _geolocation(address, where)
    result = Address(
        line=", ".join(lines) or None,
        city=_string(address, "city", where),
        state=_string(address, "state", where),
        postal_code=_string(address, "postalCode", where),
        country=_string(address, "country", where),
        latitude=latitude,
        longitude=longitude,
    )
    return None if result == Address() else result


def _geolocation(address: dict[str, Any], where: str) -> tuple[float | None, float | None]:
    """Latitude and longitude from the geolocation extension, as Synthea writes them."""
    for extension in _objects(address, "extension", where):
        if extension.get("url") != _GEOLOCATION:
            continue
        parts = {
            part.get("url"): part.get("valueDecimal")
            for part in _objects(extension, "extension", f"{where}.extension")
        }
        latitude, longitude = parts.get("latitude"), parts.get("longitude")
        if _is_number(latitude, 90.0) and _is_number(longitude, 180.0):
            return float(latitude), float(longitude)
    return None, None


def _is_number(value: Any, bound: float) -> bool:
    # bool is an int to Python, never a coordinate.
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and -bound <= value <= bound
    )


def _identifiers(resource: dict[str, Any], rtype: str) -> tuple[str, ...]:
    where = f"{rtype}.identifier"
    found = []
    for identifier in _objects(resource, "identifier", rtype):
        value = _string(identifier, "value", where)
        if value:
            # FHIR token syntax: "|value" is a value with no system.
            found.append(f"{_string(identifier, 'system', where) or ''}|{value}")
    return tuple(found)


def _staff_identifier(resource: dict[str, Any], rtype: str) -> str | None:
    for identifier in _objects(resource, "identifier", rtype):
        if identifier.get("system") == STAFF_IDENTIFIER_SYSTEM:
            value = _string(identifier, "value", f"{rtype}.identifier")
            if value:
                return value
    return None


def _security_codes(resource: dict[str, Any], rtype: str) -> list[tuple[str | None, str]]:
    meta = _object(resource, "meta", rtype)
    if meta is None:
        return []
    pairs = []
    for coding in _objects(meta, "security", f"{rtype}.meta"):
        code = _string(coding, "code", f"{rtype}.meta.security")
        if code:
            pairs.append((_string(coding, "system", f"{rtype}.meta.security"), code))
    return pairs


def _is_vip(system: str | None, code: str) -> bool:
    if code in _VIP_CODES:
        return True
    # R and V mean restricted only in the confidentiality code system.
    return code in _VIP_CONFIDENTIALITY and system in (None, _CONFIDENTIALITY_SYSTEM)


def _deceased(resource: dict[str, Any]) -> tuple[bool, datetime | None]:
    if resource.get("deceasedDateTime") is not None:
        at = _fhir_date_time(resource["deceasedDateTime"], "Patient.deceasedDateTime")
        return True, at
    flag = resource.get("deceasedBoolean")
    if flag is None:
        return False, None
    if not isinstance(flag, bool):
        raise _Malformed("Patient.deceasedBoolean is not a boolean")
    return flag, None


def _role_word(resource: dict[str, Any]) -> str | None:
    for concept in _objects(resource, "code", "PractitionerRole"):
        text = _string(concept, "text", "PractitionerRole.code")
        if text:
            return text.strip().lower()
        for coding in _objects(concept, "coding", "PractitionerRole.code"):
            word = _string(coding, "display", "PractitionerRole.code.coding") or _string(
                coding, "code", "PractitionerRole.code.coding"
            )
            if word:
                return word.strip().lower()
    return None


def _relationship(resource: dict[str, Any]) -> str | None:
    for concept in _objects(resource, "relationship", "RelatedPerson"):
        codings = _codings(concept, "RelatedPerson.relationship")
        if codings:
            return codings[0][1]
        text = _string(concept, "text", "RelatedPerson.relationship")
        if text:
            return text
    return None


def _encounter_class(resource: dict[str, Any]) -> str | None:
    value = resource.get("class")
    code = None
    if isinstance(value, dict):  # R4: a Coding
        code = _string(value, "code", "Encounter.class")
    elif isinstance(value, list):  # R5: a list of CodeableConcepts
        for concept in _objects(resource, "class", "Encounter"):
            codings = _codings(concept, "Encounter.class")
            if codings:
                code = codings[0][1]
                break
    elif value is not None:
        raise _Malformed("Encounter.class is not a Coding")
    if code is None:
        return None
    return ENCOUNTER_CLASS_WORDS.get(code.upper(), code.lower())


def _fhir_date(value: Any, where: str) -> date | None:
    """A FHIR date; None when absent or partial (a year or a month is not a day)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _Malformed(f"bad date in {where} (expected YYYY-MM-DD)")
    if len(value) < len("YYYY-MM-DD"):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"bad date in {where} (expected YYYY-MM-DD)") from None


def _fhir_date_time(value: Any, where: str) -> datetime | None:
    """A FHIR dateTime in UTC; None when absent or partial. A date alone is midnight UTC."""
    if value is None:
        return None
    if isinstance(value, str) and _DATE.fullmatch(value):
        day = _fhir_date(value, where)
        return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
    if isinstance(value, str) and _NAIVE_DATE_TIME.fullmatch(value):
        raise _Malformed(f"bad date-time in {where} (a time needs a UTC offset)")
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise _Malformed(f"bad date-time in {where} (expected ISO 8601 with a UTC offset)")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise _Malformed(
            f"bad date-time in {where} (expected ISO 8601 with a UTC offset)"
        ) from None
