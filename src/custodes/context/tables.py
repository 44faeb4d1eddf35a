"""The hospital's context as column tables, for vectorised joins with access events.

``HospitalContext`` turns the entities the context readers produce (staff, patients,
encounters, related persons) into Polars frames keyed by the ids the access logs use.
Names and addresses are reduced here to comparison keys (a normalised surname, a
household key, a street and house number) so that what leaves this module is a flag
("same surname"), never the name itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from custodes.core.entities import Address, Encounter, Patient, RelatedPerson, StaffMember

_UTC = pl.Datetime("us", "UTC")
_HOUSE_NUMBER = re.compile(r"^\s*(\d{1,6})[a-zA-Z]?\s+(.+)$")

STAFF_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "user_role": pl.String(),
    "user_department": pl.String(),
    "user_surname": pl.String(),
    "user_household": pl.String(),
    "user_street": pl.String(),
    "user_house_number": pl.Int32(),
    "user_latitude": pl.Float64(),
    "user_longitude": pl.Float64(),
    "user_termination": pl.Date(),
}

PATIENT_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "patient_surname": pl.String(),
    "patient_household": pl.String(),
    "patient_street": pl.String(),
    "patient_house_number": pl.Int32(),
    "patient_latitude": pl.Float64(),
    "patient_longitude": pl.Float64(),
    "vip": pl.Boolean(),
    "deceased_flag": pl.Boolean(),
    "deceased_at": _UTC,
    "patient_staff_id": pl.String(),
    "sensitive": pl.Boolean(),
}

ENCOUNTER_SCHEMA: dict[str, pl.DataType] = {
    "encounter_id": pl.String(),
    "patient_id": pl.String(),
    "department": pl.String(),
    "start": _UTC,
    "end": _UTC,
}

CARE_TEAM_SCHEMA: dict[str, pl.DataType] = {
    "encounter_id": pl.String(),
    "patient_id": pl.String(),
    "staff_id": pl.String(),
    "start": _UTC,
    "end": _UTC,
}

RELATIVE_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "staff_id": pl.String(),
}


def surname_key(name: str | None) -> str | None:
    """A comparison key for a family name: lower case, letters only.

    >>> surname_key("O'Brien-Smith"), surname_key(None)
    ('obriensmith', None)
    """
    if not name:
        return None
    key = "".join(ch for ch in name.lower() if ch.isalpha())
    return key or None


def street_and_number(address: Address | None) -> tuple[str | None, int | None]:
    """The street (with its postal code) and the house number, for neighbour checks.

    >>> street_and_number(Address(line="12 Elm St.", postal_code="02139"))
    ('elm st|02139', 12)
    """
    if address is None or not address.line:
        return None, None
    match = _HOUSE_NUMBER.match(address.line.split(",")[0])
    if match is None:
        return None, None
    street = " ".join(match.group(2).lower().replace(".", "").split())
    return f"{street}|{(address.postal_code or '').strip()[:5]}", int(match.group(1))


def _address_columns(address: Address | None) -> tuple[Any, ...]:
    street, number = street_and_number(address)
    household = address.household_key() if address is not None else None
    latitude = address.latitude if address is not None else None
    longitude = address.longitude if address is not None else None
    return household, street, number, latitude, longitude


@dataclass(frozen=True)
class HospitalContext:
    """Who works here, who is treated here, and who is related, as join-ready tables.

    Attributes
    ----------
    staff: one row per user id (``STAFF_SCHEMA``).
    patients: one row per patient id (``PATIENT_SCHEMA``).
    encounters: one row per encounter (``ENCOUNTER_SCHEMA``).
    care_team: one row per (encounter, staff member on its care team or attending).
    relatives: (patient, staff member recorded as the patient's relative or contact).
    """

    staff: pl.DataFrame
    patients: pl.DataFrame
    encounters: pl.DataFrame
    care_team: pl.DataFrame
    relatives: pl.DataFrame

    @classmethod
    def empty(cls) -> HospitalContext:
        """A context that knows nobody: every relationship feature is false."""
        return cls.from_entities()

    @classmethod
    def from_entities(
        cls,
        staff: Iterable[StaffMember] = (),
        patients: Iterable[Patient] = (),
        encounters: Iterable[Encounter] = (),
        related_persons: Iterable[RelatedPerson] = (),
    ) -> HospitalContext:
        """Build the tables; when an id comes twice, each field keeps its first known value.

        The same person often comes from two files (``staff.csv`` with termination
        dates, ``practitioners.ndjson`` without), so records are merged, not replaced.

        >>> ctx = HospitalContext.from_entities(
        ...     staff=[StaffMember("s1", role="nurse"), StaffMember("s1", department="icu")])
        >>> ctx.staff.select("user_id", "user_role", "user_department").rows()
        [('s1', 'nurse', 'icu')]
        """
        staff_rows = [
            (
                s.staff_id,
                s.role,
                s.department,
                surname_key(s.family_name),
                *_address_columns(s.address),
                s.termination_date,
            )
            for s in staff
        ]
        patient_rows = [
            (
                p.patient_id,
                surname_key(p.family_name),
                *_address_columns(p.address),
                p.vip,
                p.deceased,
                p.deceased_at,
                p.staff_id,
                bool(p.sensitive_categories),
            )
            for p in patients
        ]
        encounter_list = list(encounters)
        encounter_rows = [
            (e.encounter_id, e.patient_id, e.department, e.start, e.end) for e in encounter_list
        ]
        team_rows = [
            (e.encounter_id, e.patient_id, member, e.start, e.end)
            for e in encounter_list
            for member in {*e.care_team, *((e.attending_id,) if e.attending_id else ())}
        ]
        relative_rows = [(r.patient_id, r.staff_id) for r in related_persons if r.staff_id]
        return cls(
            staff=_merge(staff_rows, STAFF_SCHEMA, "user_id"),
            patients=_merge(patient_rows, PATIENT_SCHEMA, "patient_id"),
            encounters=_merge(encounter_rows, ENCOUNTER_SCHEMA, "encounter_id"),
            care_team=pl.DataFrame(team_rows, schema=CARE_TEAM_SCHEMA, orient="row").unique(
                ["encounter_id", "staff_id"], maintain_order=True
            ),
            relatives=pl.DataFrame(relative_rows, schema=RELATIVE_SCHEMA, orient="row").unique(
                maintain_order=True
            ),
        )


def _merge(rows: list[tuple[Any, ...]], schema: dict[str, pl.DataType], key: str) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    if frame.is_empty() or frame[key].n_unique() == frame.height:
        return frame
    # A flag raised in either source stays raised; other fields keep the first value known.
    merged = [
        pl.col(name).max() if dtype == pl.Boolean() else pl.col(name).drop_nulls().first()
        for name, dtype in schema.items()
        if name != key
    ]
    return frame.group_by(key, maintain_order=True).agg(merged).select(list(schema))
