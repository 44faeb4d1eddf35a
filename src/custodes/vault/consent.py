"""Patients' consent directives, read from the FHIR ``Consent`` resources the vault holds.

A ``Consent`` that is ``active`` restricts access through its ``deny`` provisions (the
top-level provision, or the nested ones of a ``permit``). Each becomes a
``ConsentDirective`` for ``access.decide``:

- ``provision.actor.reference`` ``Practitioner/ID`` denies that user (account name =
  staff id); an actor whose ``role`` has a coding in ``urn:custodes:role`` (``clinician``,
  ``nurse``, ``front_desk``, ``billing``, ``him``, ``researcher``, ...) denies the role;
  no actor denies everyone;
- ``provision.purpose`` (HL7 v3 PurposeOfUse: ``HRESCH``, ``HPAYMT``, ...) limits the
  denial to those purposes;
- ``provision.securityLabel`` present: the denial covers sensitive records only;
- ``provision.period`` (else ``Consent.provision.period``) bounds it in time.

Break-the-glass overrides a directive (the usual HIPAA reading of an emergency); a
``Consent`` whose ``policyRule`` has the code ``no-emergency-override`` in
``urn:custodes:consent`` holds even then.
"""

from __future__ import annotations

from datetime import datetime

from custodes.access import ConsentDirective
from custodes.core.accounts import Role

ROLE_SYSTEM = "urn:custodes:role"
CONSENT_SYSTEM = "urn:custodes:consent"


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _codes(concepts: object, system: str | None = None) -> set[str]:
    found: set[str] = set()
    for item in concepts if isinstance(concepts, list) else [concepts]:
        if not isinstance(item, dict):
            continue
        codings = item.get("coding") if "coding" in item else [item]
        for coding in codings or ():
            if (isinstance(coding, dict) and isinstance(coding.get("code"), str)
                    and (system is None or coding.get("system") == system)):  # fmt: skip
                found.add(coding["code"])
    return found


def directives(consent: dict, patient_id: str) -> list[ConsentDirective]:
    """The restrictions one ``Consent`` resource places on access to the patient's record."""
    if consent.get("resourceType") != "Consent" or consent.get("status") != "active":
        return []
    top = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
    override = "no-emergency-override" not in _codes(consent.get("policyRule"), CONSENT_SYSTEM)
    provisions = [top] if top.get("type") == "deny" else [
        p for p in top.get("provision") or () if isinstance(p, dict) and p.get("type") == "deny"
    ]  # fmt: skip
    found = []
    for provision in provisions:
        users: set[str] = set()
        roles: set[Role] = set()
        for actor in provision.get("actor") or ():
            if not isinstance(actor, dict):
                continue
            reference = (actor.get("reference") or {}).get("reference")
            if isinstance(reference, str) and reference.startswith("Practitioner/"):
                users.add(reference.removeprefix("Practitioner/"))
            for code in _codes(actor.get("role"), ROLE_SYSTEM):
                if code in {r.value for r in Role}:
                    roles.add(Role(code))
        period = provision.get("period") or top.get("period") or {}
        found.append(ConsentDirective(
            patient_id=patient_id,
            denied_roles=frozenset(roles),
            denied_users=frozenset(users),
            denied_purposes=frozenset(_codes(provision.get("purpose"))),
            sensitive_only=bool(provision.get("securityLabel")),
            emergency_override=override,
            start=_when(period.get("start")),
            end=_when(period.get("end")),
        ))  # fmt: skip
    return found
