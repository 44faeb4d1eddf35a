"""The hospital's context, written as FHIR NDJSON and as the documented context CSVs.

``DIR/context/`` holds::

    organizations.ndjson   Organization: the hospital and its departments (partOf)
    practitioners.ndjson   Practitioner + PractitionerRole (role, department, period)
    patients.ndjson        Patient (VIP and sensitive categories in meta.security,
                           the staff identifier of a staff member who is a patient)
                           + RelatedPerson (relationship, staff identifier)
    encounters.ndjson      Encounter (class, period, serviceProvider, attending, partOf)
                           + CareTeam (members and when they joined)
    staff.csv, patients.csv, encounters.csv, related_persons.csv

Each FHIR file holds what ``read_fhir_context`` must see together: a PractitionerRole
beside its Practitioner (else the roster entry loses its name), a CareTeam beside its
Encounter (else it is quarantined). The CSVs carry the same facts in the headers of
``custodes.ingest.csv_context``; they have no departments file and no coordinates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from custodes.ingest.csv_context import CONTEXT_CSV_HEADERS
from custodes.ingest.fhir_context import STAFF_IDENTIFIER_SYSTEM
from custodes.simulate.config import ROLES
from custodes.simulate.encounters import CLASS_CODES, Encounters
from custodes.simulate.hospital import (
    NOT_TERMINATED,
    RELATIONSHIP_CODES,
    SENSITIVE_CATEGORIES,
    SENSITIVE_SECURITY_CODES,
    Hospital,
)
from custodes.simulate.names import FEMALE_NAMES, MALE_NAMES, STATE, SURNAMES
from custodes.simulate.workflows import TEAM_ROLES

HOSPITAL_ORGANIZATION_ID = "org-hospital"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_GEOLOCATION = "http://hl7.org/fhir/StructureDefinition/geolocation"
_MRN_SYSTEM = "urn:custodes:simulated-mrn"
_NPI_SYSTEM = "urn:custodes:simulated-npi"
_TEAM_ROLE_WORDS = {"ATND": "attending", "PART": "care team member", "CON": "consultant"}


def _instants(start: datetime, ms: np.ndarray) -> list[str]:
    """ISO 8601 UTC instants, to the second, for offsets in ms from ``start``."""
    base = np.datetime64(start.replace(tzinfo=None), "ms")
    values = base + np.asarray(ms, dtype=np.int64).astype("timedelta64[ms]")
    return [f"{v}Z" for v in np.datetime_as_string(values, unit="s")]


class _People:
    """Names, addresses and dates as the files write them."""

    def __init__(self, hospital: Hospital) -> None:
        self.hospital = hospital
        households = hospital.households
        self.latitude, self.longitude = households.coordinates()
        self.lines = [households.address_line(h) for h in range(len(households))]
        self.towns = [households.town(h) for h in range(len(households))]

    def given(self, index: int, female: bool) -> str:
        return (FEMALE_NAMES if female else MALE_NAMES)[index]

    def address(self, household: int) -> dict:
        town, postal = self.towns[household]
        return {
            "use": "home",
            "line": [self.lines[household]],
            "city": town,
            "state": STATE,
            "postalCode": postal,
            "country": "US",
            "extension": [
                {
                    "url": _GEOLOCATION,
                    "extension": [
                        {"url": "latitude", "valueDecimal": float(self.latitude[household])},
                        {"url": "longitude", "valueDecimal": float(self.longitude[household])},
                    ],
                }
            ],
        }

    def address_columns(self, household: int) -> tuple[str, str, str, str]:
        town, postal = self.towns[household]
        return self.lines[household], town, STATE, postal

    def day(self, offset: int) -> str:
        return (self.hospital.config.start + timedelta(days=int(offset))).isoformat()


def write_context(
    hospital: Hospital,
    encounters: Encounters,
    care_team: dict[str, np.ndarray],
    folder: Path,
) -> dict[str, int]:
    """Write the context files; returns how many of each resource were written."""
    folder.mkdir(parents=True, exist_ok=True)
    people = _People(hospital)
    counts: dict[str, int] = {}
    counts["Organization"] = _organizations(hospital, folder / "organizations.ndjson")
    counts["Practitioner"] = counts["PractitionerRole"] = _practitioners(hospital, people, folder)
    counts["Patient"], counts["RelatedPerson"] = _patients(hospital, people, folder)
    counts["Encounter"], counts["CareTeam"] = _encounters(hospital, encounters, care_team, folder)
    return counts


class _NdjsonFile:
    """Resources written one a line as they are made, so none is kept in memory."""

    def __init__(self, path: Path) -> None:
        self.handle = open(path, "wb")  # noqa: SIM115 - closed by ``close``
        self.count = 0

    def append(self, resource: dict) -> None:
        self.handle.write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))
        self.count += 1

    def close(self) -> None:
        self.handle.close()


def _write_csv(path: Path, kind: str, rows: dict[str, list]) -> None:
    header = CONTEXT_CSV_HEADERS[kind]
    frame = pl.DataFrame({c: rows[c] for c in header}, schema=dict.fromkeys(header, pl.String))
    frame.write_csv(path)


def _organizations(hospital: Hospital, path: Path) -> int:
    config = hospital.config
    resources = _NdjsonFile(path)
    resources.append(
        {
            "resourceType": "Organization",
            "id": HOSPITAL_ORGANIZATION_ID,
            "active": True,
            "name": config.hospital_name,
        }
    )
    for department_id, spec in zip(
        hospital.departments.ids, hospital.departments.specs, strict=True
    ):
        resources.append(
            {
                "resourceType": "Organization",
                "id": department_id,
                "active": True,
                "type": [{"text": spec.kind}],
                "name": spec.name,
                "partOf": {"reference": f"Organization/{HOSPITAL_ORGANIZATION_ID}"},
            }
        )
    resources.close()
    return resources.count


def _practitioners(hospital: Hospital, people: _People, folder: Path) -> int:
    staff = hospital.staff
    departments = hospital.departments
    window_end = hospital.config.days
    resources = _NdjsonFile(folder / "practitioners.ndjson")
    rows: dict[str, list] = {c: [] for c in CONTEXT_CSV_HEADERS["staff"]}
    for i, staff_id in enumerate(staff.ids):
        family = SURNAMES[staff.surname[i]]
        given = people.given(int(staff.given[i]), bool(staff.female[i]))
        role = ROLES[staff.role[i]]
        department_id = departments.ids[staff.department[i]]
        hired = people.day(staff.hire_day[i])
        terminated = int(staff.termination_day[i])
        ended = people.day(terminated) if terminated != NOT_TERMINATED else None
        resources.append(
            {
                "resourceType": "Practitioner",
                "id": staff_id,
                "active": ended is None,
                "identifier": [{"system": _NPI_SYSTEM, "value": f"9{i:09d}"}],
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": "female" if staff.female[i] else "male",
                "address": [people.address(int(staff.household[i]))],
            }
        )
        period = {"start": hired} | ({"end": ended} if ended else {})
        resources.append(
            {
                "resourceType": "PractitionerRole",
                "id": f"role-{staff_id}",
                "active": ended is None or terminated >= window_end,
                "period": period,
                "practitioner": {"reference": f"Practitioner/{staff_id}"},
                "organization": {"reference": f"Organization/{department_id}"},
                "code": [
                    {
                        "coding": [{"system": "urn:custodes:simulated-role", "code": role.code}],
                        "text": role.title,
                    }
                ],
            }
        )
        line, city, state, postal = people.address_columns(int(staff.household[i]))
        for column, value in (
            ("staff_id", staff_id), ("family_name", family), ("given_names", given),
            ("role", role.title), ("department", department_id), ("address_line", line),
            ("city", city), ("state", state), ("postal_code", postal), ("hire_date", hired),
            ("termination_date", ended),
        ):  # fmt: skip
            rows[column].append(value)
    resources.close()
    _write_csv(folder / "staff.csv", "staff", rows)
    return len(staff)


def _patients(hospital: Hospital, people: _People, folder: Path) -> tuple[int, int]:
    patients, staff, relations = hospital.patients, hospital.staff, hospital.relations
    resources = _NdjsonFile(folder / "patients.ndjson")
    rows: dict[str, list] = {c: [] for c in CONTEXT_CSV_HEADERS["patients"]}
    for i, patient_id in enumerate(patients.ids):
        family = SURNAMES[patients.surname[i]]
        given = people.given(int(patients.given[i]), bool(patients.female[i]))
        household = int(patients.household[i])
        birth = people.day(patients.birth_day[i])
        security = []
        categories = []
        if patients.vip[i]:
            security.append({"system": _ACT_CODE, "code": "CEL", "display": "celebrity"})
        for bit, (category, code) in enumerate(
            zip(SENSITIVE_CATEGORIES, SENSITIVE_SECURITY_CODES, strict=True)
        ):
            if patients.sensitive[i] >> bit & 1:
                security.append({"system": _ACT_CODE, "code": code})
                categories.append(category)
        identifiers = [{"system": _MRN_SYSTEM, "value": f"M{i + 100000:08d}"}]
        staff_id = staff.ids[patients.staff[i]] if patients.staff[i] >= 0 else None
        if staff_id:
            identifiers.append({"system": STAFF_IDENTIFIER_SYSTEM, "value": staff_id})
        resource = {"resourceType": "Patient", "id": patient_id}
        if security:
            resource["meta"] = {"security": security}
        resource |= {
            "identifier": identifiers,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": "female" if patients.female[i] else "male",
            "birthDate": birth,
            "address": [people.address(household)],
        }
        resources.append(resource)
        line, city, state, postal = people.address_columns(household)
        for column, value in (
            ("patient_id", patient_id), ("family_name", family), ("given_names", given),
            ("address_line", line), ("city", city), ("state", state), ("postal_code", postal),
            ("birth_date", birth), ("deceased", "false"),
            ("vip", "true" if patients.vip[i] else "false"), ("staff_id", staff_id),
            ("sensitive_categories", ";".join(categories) or None),
        ):  # fmt: skip
            rows[column].append(value)
    related_rows: dict[str, list] = {c: [] for c in CONTEXT_CSV_HEADERS["related_persons"]}
    recorded = np.flatnonzero(relations.recorded)
    for n, r in enumerate(recorded.tolist()):
        related_id = f"rp-{n:07d}"
        patient_id = patients.ids[relations.patient[r]]
        code = RELATIONSHIP_CODES[relations.code[r]]
        if relations.relative_staff[r] >= 0:
            s = int(relations.relative_staff[r])
            family = SURNAMES[staff.surname[s]]
            given = people.given(int(staff.given[s]), bool(staff.female[s]))
            household = int(staff.household[s])
            staff_id = staff.ids[s]
        else:
            p = int(relations.relative_patient[r])
            family = SURNAMES[patients.surname[p]]
            given = people.given(int(patients.given[p]), bool(patients.female[p]))
            household = int(patients.household[p])
            staff_id = staff.ids[patients.staff[p]] if patients.staff[p] >= 0 else None
        resource = {
            "resourceType": "RelatedPerson",
            "id": related_id,
            "patient": {"reference": f"Patient/{patient_id}"},
            "relationship": [{"coding": [{"system": _ROLE_CODE, "code": code}]}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "address": [people.address(household)],
        }
        if staff_id:
            resource["identifier"] = [{"system": STAFF_IDENTIFIER_SYSTEM, "value": staff_id}]
        resources.append(resource)
        line, city, state, postal = people.address_columns(household)
        for column, value in (
            ("related_id", related_id), ("patient_id", patient_id), ("relationship", code),
            ("family_name", family), ("given_names", given), ("address_line", line),
            ("city", city), ("state", state), ("postal_code", postal), ("staff_id", staff_id),
        ):  # fmt: skip
            related_rows[column].append(value)
    resources.close()
    _write_csv(folder / "patients.csv", "patients", rows)
    _write_csv(folder / "related_persons.csv", "related_persons", related_rows)
    return len(patients), len(recorded)


def _encounters(
    hospital: Hospital, encounters: Encounters, care_team: dict[str, np.ndarray], folder: Path
) -> tuple[int, int]:
    start = datetime.combine(hospital.config.start, datetime.min.time(), tzinfo=UTC)
    window_end = hospital.config.days * 86_400_000
    staff_ids, patient_ids = hospital.staff.ids, hospital.patients.ids
    department_ids = hospital.departments.ids
    begins = _instants(start, encounters.start)
    ends = _instants(start, encounters.end)
    finished = encounters.end <= window_end
    # Care-team members by encounter (the table is sorted by encounter).
    team_encounter = care_team["encounter"]
    bounds = np.searchsorted(team_encounter, np.arange(len(encounters) + 1))
    team_begins = _instants(start, care_team["start"])
    team_ends = _instants(start, np.minimum(care_team["end"], window_end))
    resources = _NdjsonFile(folder / "encounters.ndjson")
    rows: dict[str, list] = {c: [] for c in CONTEXT_CSV_HEADERS["encounters"]}
    care_teams = 0
    for i, encounter_id in enumerate(encounters.ids):
        patient_id = patient_ids[encounters.patient[i]]
        attending = int(encounters.attending[i])
        resource = {
            "resourceType": "Encounter",
            "id": encounter_id,
            "status": "finished" if finished[i] else "in-progress",
            "class": {"system": _ACT_CODE, "code": CLASS_CODES[encounters.encounter_class[i]]},
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        if attending >= 0:
            resource["participant"] = [
                {
                    "type": [{"coding": [{"system": _PARTICIPATION, "code": "ATND"}]}],
                    "individual": {"reference": f"Practitioner/{staff_ids[attending]}"},
                }
            ]
        resource["period"] = {"start": begins[i]} | ({"end": ends[i]} if finished[i] else {})
        resource["serviceProvider"] = {
            "reference": f"Organization/{department_ids[encounters.department[i]]}"
        }
        if encounters.stay[i] != i:
            resource["partOf"] = {"reference": f"Encounter/{encounters.ids[encounters.stay[i]]}"}
        resources.append(resource)
        members = range(bounds[i], bounds[i + 1])
        if len(members):
            care_teams += 1
            participants = []
            for m in members:
                code = TEAM_ROLES[care_team["role"][m]]
                period = {"start": team_begins[m]}
                if care_team["end"][m] <= window_end:
                    period["end"] = team_ends[m]
                participants.append(
                    {
                        "role": [
                            {
                                "coding": [{"system": _PARTICIPATION, "code": code}],
                                "text": _TEAM_ROLE_WORDS[code],
                            }
                        ],
                        "member": {"reference": f"Practitioner/{staff_ids[care_team['staff'][m]]}"},
                        "period": period,
                    }
                )
            resources.append(
                {
                    "resourceType": "CareTeam",
                    "id": f"ct-{encounter_id}",
                    "status": "active" if not finished[i] else "inactive",
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "encounter": {"reference": f"Encounter/{encounter_id}"},
                    "participant": participants,
                }
            )
        team = [staff_ids[care_team["staff"][m]] for m in members]
        for column, value in (
            ("encounter_id", encounter_id), ("patient_id", patient_id),
            ("department", department_ids[encounters.department[i]]), ("start", begins[i]),
            ("end", ends[i] if finished[i] else None),
            ("attending_id", staff_ids[attending] if attending >= 0 else None),
            ("care_team", ";".join(dict.fromkeys(team)) or None),
            ("encounter_class", CLASS_CODES[encounters.encounter_class[i]]),
        ):  # fmt: skip
            rows[column].append(value)
    resources.close()
    _write_csv(folder / "encounters.csv", "encounters", rows)
    return len(encounters), care_teams
