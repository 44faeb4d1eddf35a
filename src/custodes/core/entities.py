"""The hospital's context: who works here, who is treated here, and who is related.

These entities are what a detector asks "does this user have a reason to see this
patient?" of. They hold PHI (names, addresses, birth dates), so they never leave the
context layer un-pseudonymised, and never go to a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address, as far as the source gives it.

    Attributes
    ----------
    line: street lines joined with ", ".
    city, state, postal_code, country: as given.
    latitude, longitude: when the source geocodes (Synthea does), for neighbour checks.
    """

    line: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def household_key(self) -> str | None:
        """A normalised key that two people at the same address share.

        >>> Address(line="12 Elm St.", postal_code="02139").household_key()
        '12 elm st|02139'
        """
        if not self.line:
            return None
        street = " ".join(self.line.lower().replace(".", "").replace(",", " ").split())
        return f"{street}|{(self.postal_code or '').strip()[:5]}"


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A member of the workforce who can access records.

    Attributes
    ----------
    staff_id: the id the access logs use for this person (FHIR Practitioner id, EHR user id).
    family_name, given_names: as in the HR roster.
    role: job role (``physician``, ``nurse``, ``registration``, ``billing``, ...).
    department: home department or unit.
    address: home address, for neighbour and household checks.
    hire_date, termination_date: employment dates; an access after termination is suspicious.
    identifiers: other ids (NPI, EHR login), as ``system|value`` strings.
    """

    staff_id: str
    family_name: str | None = None
    given_names: tuple[str, ...] = ()
    role: str | None = None
    department: str | None = None
    address: Address | None = None
    hire_date: date | None = None
    termination_date: date | None = None
    identifiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Patient:
    """A person whose record the hospital holds.

    Attributes
    ----------
    patient_id: the id the access logs use (FHIR Patient id, MRN).
    family_name, given_names: as registered.
    address: home address.
    birth_date: date of birth.
    deceased: whether the patient has died (access to a deceased patient's record is a flag).
    deceased_at: when, if known.
    vip: a VIP or confidential patient (public figure, employee, high-profile case).
    staff_id: the staff record of the same person, when the patient is an employee.
    sensitive_categories: e.g. ``hiv``, ``substance-use``, ``mental-health``, ``reproductive``.
    identifiers: MRN, SSN and the like, as ``system|value`` strings.
    """

    patient_id: str
    family_name: str | None = None
    given_names: tuple[str, ...] = ()
    address: Address | None = None
    birth_date: date | None = None
    deceased: bool = False
    deceased_at: datetime | None = None
    vip: bool = False
    staff_id: str | None = None
    sensitive_categories: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Encounter:
    """A visit or stay: the main documented reason for staff to see a patient.

    Attributes
    ----------
    encounter_id: the source's id.
    patient_id: who was seen.
    department: where (department, unit or serving organization).
    start, end: the period; ``end`` is None while the patient is still in.
    attending_id: the responsible clinician.
    care_team: staff ids on the care team during the encounter.
    encounter_class: ``inpatient``, ``emergency``, ``ambulatory``, ...
    """

    encounter_id: str
    patient_id: str
    start: datetime
    department: str | None = None
    end: datetime | None = None
    attending_id: str | None = None
    care_team: tuple[str, ...] = field(default_factory=tuple)
    encounter_class: str | None = None


@dataclass(frozen=True, slots=True)
class RelatedPerson:
    """A person related to a patient: family, guardian, emergency contact.

    Attributes
    ----------
    related_id: the source's id for the relation.
    patient_id: the patient.
    relationship: an HL7 v3 RoleCode (``MTH``, ``SPS``, ``CHILD``) or plain words.
    family_name, given_names: the related person's names.
    address: their address.
    staff_id: the staff record of the same person, when the relative works here.
    """

    related_id: str
    patient_id: str
    relationship: str | None = None
    family_name: str | None = None
    given_names: tuple[str, ...] = ()
    address: Address | None = None
    staff_id: str | None = None


@dataclass(frozen=True, slots=True)
class Department:
    """An organization unit (FHIR Organization): a department, ward or the hospital itself.

    Attributes
    ----------
    department_id: the source's id.
    name: display name.
    part_of: the parent organization's id.
    """

    department_id: str
    name: str | None = None
    part_of: str | None = None
