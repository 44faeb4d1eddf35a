"""FHIR R4 resources as the vault sees them: validation, the patient a resource belongs
to, references inside a transaction, masks, and the values its blind index holds.

Validation uses ``fhir.resources``' R4B models (R4B is R4 with errata; every Synthea R4
resource validates against it). Error messages name the element that is wrong, never
the value, so they are safe to return and to log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from custodes.vault.errors import InvalidResource

#: The types the issue names, plus the ones a Synthea transaction carries, plus the
#: context types that make a record whole. docs/vault.md lists them.
PATIENT_TYPES = frozenset({
    "Patient", "Encounter", "Observation", "Condition", "MedicationRequest", "Procedure",
    "DiagnosticReport", "DocumentReference", "AllergyIntolerance", "Immunization", "CarePlan",
    "Claim", "ExplanationOfBenefit", "Goal", "ImagingStudy", "CareTeam", "Coverage",
    "RelatedPerson", "MedicationAdministration", "MedicationStatement", "ServiceRequest",
    "Specimen", "FamilyMemberHistory", "Device", "Consent",
})  # fmt: skip
ORGANISATIONAL_TYPES = frozenset({"Practitioner", "Organization", "PractitionerRole", "Location", "Medication"})
SUPPORTED_TYPES = PATIENT_TYPES | ORGANISATIONAL_TYPES

#: Where each type names its patient (FHIR R4 Patient compartment, the first parameter).
_PATIENT_ELEMENT = {
    "Encounter": "subject", "Observation": "subject", "Condition": "subject",
    "MedicationRequest": "subject", "Procedure": "subject", "DiagnosticReport": "subject",
    "DocumentReference": "subject", "AllergyIntolerance": "patient", "Immunization": "patient",
    "CarePlan": "subject", "Claim": "patient", "ExplanationOfBenefit": "patient",
    "Goal": "subject", "ImagingStudy": "subject", "CareTeam": "subject", "Coverage": "beneficiary",
    "RelatedPerson": "patient", "MedicationAdministration": "subject",
    "MedicationStatement": "subject", "ServiceRequest": "subject", "Specimen": "subject",
    "FamilyMemberHistory": "patient", "Device": "patient", "Consent": "patient",
}  # fmt: skip

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
_SERVER_ELEMENTS = ("resourceType", "id", "meta")


def check_type(resource_type: str) -> None:
    if resource_type not in SUPPORTED_TYPES:
        raise InvalidResource(f"the vault does not hold {resource_type[:40]} resources", code="not-supported")


def is_id(value: str) -> bool:
    """Whether ``value`` is a valid FHIR logical id."""
    return bool(_ID.match(value or ""))


def check_id(record_id: str) -> None:
    if not is_id(record_id):
        raise InvalidResource("a resource id is 1 to 64 letters, digits, '-' or '.'", code="value")


def _model(resource_type: str) -> Callable[[dict], Any]:
    from fhir.resources.R4B import (
        get_fhir_model_class,  # imported on first use: ~1 s of model classes
    )

    return get_fhir_model_class(resource_type).model_validate


def validate(resource: object, *, expected_type: str | None = None) -> dict:
    """The resource, checked against the FHIR R4 model; ``InvalidResource`` says what is wrong."""
    if not isinstance(resource, dict):
        raise InvalidResource("a resource must be a JSON object", code="structure")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource("the resource has no resourceType", code="required")
    check_type(resource_type)
    if expected_type is not None and resource_type != expected_type:
        raise InvalidResource(f"the body is a {resource_type[:40]}, the URL names a {expected_type}", code="invalid")
    if "id" in resource:
        check_id(resource["id"] if isinstance(resource["id"], str) else "")
    try:
        _model(resource_type)(resource)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or resource_type
        message = first.get("msg", "is not valid").split("\n")[0][:160]
        raise InvalidResource(f"{resource_type}.{where}: {message}", code="structure") from None
    except (TypeError, ValueError) as err:  # fhir_core raises these for some shapes
        raise InvalidResource(f"{resource_type} is not valid FHIR R4: {type(err).__name__}", code="structure") from None
    return resource


def patient_of(resource: dict) -> str | None:
    """The logical id of the patient the resource belongs to (None: organisational).

    A patient resource type whose patient element is missing or does not reference a
    Patient is invalid here: the vault files every clinical record under its patient.
    """
    resource_type = resource["resourceType"]
    if resource_type == "Patient":
        return resource.get("id")
    if resource_type in ORGANISATIONAL_TYPES:
        return None
    element = _PATIENT_ELEMENT[resource_type]
    reference = (resource.get(element) or {}).get("reference") if isinstance(resource.get(element), dict) else None
    if isinstance(reference, str) and reference.startswith("Patient/"):
        patient_id = reference.removeprefix("Patient/").split("/_history/")[0]
        check_id(patient_id)
        return patient_id
    raise InvalidResource(f"{resource_type}.{element} must reference a Patient (Patient/ID)", code="required")


def references(node: object) -> Iterator[dict]:
    """Every ``Reference`` object (a dict with a string ``reference``) inside ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            if isinstance(value, dict | list):
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                yield from references(item)


def rewrite_references(resource: dict, mapping: dict[str, str]) -> None:
    """Replace references to transaction entries (``urn:uuid:...``) by ``Type/id``, in place."""
    for ref in references(resource):
        target = mapping.get(ref["reference"])
        if target is not None:
            ref["reference"] = target


def mask(resource: dict, visible: frozenset[str] | None) -> dict:
    """Only the elements a role's minimum-necessary mask shows (None: all of them)."""
    if visible is None:
        return resource
    kept = {k: v for k, v in resource.items() if k in visible or k in _SERVER_ELEMENTS}
    if "birthDate" in kept and "birthDate" in visible and "name" not in visible:
        kept["birthDate"] = str(kept["birthDate"])[:4]  # not identifying: the year only
    security = list((kept.get("meta") or {}).get("security", []))
    security.append({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "MASKED"})
    kept["meta"] = {**(kept.get("meta") or {}), "security": security}
    return kept


def index_values(resource: dict) -> Iterator[tuple[str, str]]:
    """(purpose, value) pairs to blind-index: identifiers, SSNs and names.

    Patients and practitioners are found by any identifier value (``mrn``), by SSN
    (``ssn``), and by family name or full name (``name``).
    """
    if resource["resourceType"] not in ("Patient", "Practitioner", "RelatedPerson"):
        return
    for identifier in resource.get("identifier") or ():
        value = identifier.get("value") if isinstance(identifier, dict) else None
        if not isinstance(value, str) or not value.strip():
            continue
        if identifier.get("system") == "http://hl7.org/fhir/sid/us-ssn" and len(re.sub(r"\D", "", value)) == 9:
            yield "ssn", value
        yield "mrn", value
    for name in resource.get("name") or ():
        if not isinstance(name, dict):
            continue
        family = name.get("family") if isinstance(name.get("family"), str) else ""
        given = " ".join(g for g in name.get("given") or () if isinstance(g, str))
        if family.strip():
            yield "name", family
        if given.strip() and family.strip():
            yield "name", f"{given} {family}"


def transaction_bundle(resources: list[dict]) -> dict:
    """A transaction Bundle that stores each resource under its own id (``PUT Type/id``)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r.get('resourceType')}/{r.get('id')}"}}
            for r in resources
        ],
    }
