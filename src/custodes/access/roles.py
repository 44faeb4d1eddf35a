"""The role table: what each role may do, to which resources, and which elements it sees.

Minimum necessary (45 CFR 164.502(b)): a role sees the FHIR elements its work needs.
``None`` as a mask means every element. docs/access.md renders this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from custodes.core.accounts import Role
from custodes.core.events import Action

DEMOGRAPHIC = frozenset({"Patient", "RelatedPerson"})
SCHEDULING = frozenset({"Appointment", "Schedule", "Slot"})
FINANCIAL = frozenset({"Coverage", "Claim", "ExplanationOfBenefit", "Account", "Invoice"})
CLINICAL = frozenset({
    "Encounter", "Observation", "Condition", "Procedure", "MedicationRequest",
    "MedicationStatement", "MedicationAdministration", "AllergyIntolerance", "Immunization",
    "DiagnosticReport", "DocumentReference", "CarePlan", "CareTeam", "ImagingStudy",
    "ServiceRequest", "Specimen", "FamilyMemberHistory", "Goal", "Device",
})  # fmt: skip
#: Who works where: no patient's data, so every role may see them.
ORGANISATIONAL = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location", "Medication"})
EVERY_TYPE = DEMOGRAPHIC | SCHEDULING | FINANCIAL | CLINICAL | ORGANISATIONAL | {"Bundle", "AuditEvent", "Consent"}

READING = frozenset({Action.READ, Action.VREAD, Action.SEARCH})
WRITING = frozenset({Action.CREATE, Action.UPDATE})


class Sensitive(StrEnum):
    """What a role meets at a sensitive record (HIV, Part 2, mental health, ...)."""

    DENY = "deny"
    STEP_UP = "step-up"  # allowed after a fresh second factor


@dataclass(frozen=True, slots=True)
class RolePolicy:
    actions: frozenset[Action]
    resource_types: frozenset[str]
    needs_care_relationship: bool
    may_break_glass: bool
    sensitive: Sensitive
    masks: dict[str, frozenset[str]] | None = None  # resource type -> visible elements
    purposes: frozenset[str] | None = None  # required purposes of use (None: any)
    review_always: bool = False


_IDENTIFIED_PATIENT = frozenset({"id", "identifier", "name", "telecom", "gender", "birthDate",
                                 "address", "contact", "communication", "active"})  # fmt: skip
_NOT_IDENTIFYING = frozenset({"id", "gender", "birthDate"})  # birthDate trimmed to the year upstream

ROLE_POLICIES: dict[Role, RolePolicy] = {
    Role.CLINICIAN: RolePolicy(
        READING | WRITING | {Action.PRINT}, DEMOGRAPHIC | SCHEDULING | CLINICAL | ORGANISATIONAL,
        needs_care_relationship=True, may_break_glass=True, sensitive=Sensitive.STEP_UP,
    ),
    Role.NURSE: RolePolicy(
        READING | WRITING, DEMOGRAPHIC | SCHEDULING | CLINICAL | ORGANISATIONAL,
        needs_care_relationship=True, may_break_glass=True, sensitive=Sensitive.STEP_UP,
        masks={"DocumentReference": frozenset({"id", "status", "type", "category", "subject",
                                               "date", "author", "content"})},
    ),
    Role.FRONT_DESK: RolePolicy(
        READING | WRITING, DEMOGRAPHIC | SCHEDULING | ORGANISATIONAL | {"Coverage"},
        needs_care_relationship=False, may_break_glass=False, sensitive=Sensitive.DENY,
        masks={"Patient": _IDENTIFIED_PATIENT,
               "Coverage": frozenset({"id", "status", "subscriber", "beneficiary", "payor", "period"})},
    ),
    Role.BILLING: RolePolicy(
        READING | {Action.UPDATE}, DEMOGRAPHIC | FINANCIAL | ORGANISATIONAL | {"Encounter", "Procedure", "Condition"},
        needs_care_relationship=False, may_break_glass=False, sensitive=Sensitive.DENY,
        masks={"Patient": frozenset({"id", "identifier", "name", "birthDate", "address"}),
               "Encounter": frozenset({"id", "status", "class", "type", "period", "serviceProvider"}),
               "Procedure": frozenset({"id", "status", "code", "performedPeriod", "performedDateTime"}),
               "Condition": frozenset({"id", "code", "recordedDate"})},
    ),
    Role.HIM: RolePolicy(
        READING | {Action.UPDATE, Action.EXPORT, Action.PRINT}, EVERY_TYPE,
        needs_care_relationship=False, may_break_glass=False, sensitive=Sensitive.STEP_UP,
    ),
    Role.RESEARCHER: RolePolicy(
        READING, DEMOGRAPHIC | CLINICAL | ORGANISATIONAL,
        needs_care_relationship=False, may_break_glass=False, sensitive=Sensitive.DENY,
        masks={"Patient": _NOT_IDENTIFYING, "RelatedPerson": frozenset({"id", "relationship"})},
        purposes=frozenset({"HRESCH"}),
    ),
    Role.PRIVACY_OFFICER: RolePolicy(
        READING, EVERY_TYPE,
        needs_care_relationship=False, may_break_glass=False, sensitive=Sensitive.STEP_UP,
    ),
    Role.ADMINISTRATOR: RolePolicy(
        frozenset(Action), EVERY_TYPE,
        needs_care_relationship=False, may_break_glass=False, sensitive=Sensitive.STEP_UP,
        review_always=True,
    ),
}  # fmt: skip


#: Who may work the case queue (alerts, cases, verdicts, suppressions, playbooks,
#: approvals): the privacy office and administrators. A case names users and patients
#: and its actions lock accounts, so no other role sees it.
CASE_ROLES = frozenset({Role.PRIVACY_OFFICER, Role.ADMINISTRATOR})


def may_work_cases(role: Role) -> bool:
    """Whether ``role`` may read and act on the case queue.

    >>> may_work_cases(Role.PRIVACY_OFFICER), may_work_cases(Role.CLINICIAN)
    (True, False)
    """
    return role in CASE_ROLES
