"""The code tables readers map source vocabularies through.

A code outside these tables is an error in the source (quarantined with the reason),
never a guess.
"""

from __future__ import annotations

from custodes.core.events import Action, Outcome

#: FHIR RESTful interactions (http://hl7.org/fhir/restful-interaction), DICOM event types
#: and the action words of CSV exports, to ``Action``.
ACTION_CODES: dict[str, str] = {
    "read": Action.READ,
    "vread": Action.VREAD,
    "history": Action.READ,
    "history-instance": Action.READ,
    "history-type": Action.SEARCH,
    "search": Action.SEARCH,
    "search-type": Action.SEARCH,
    "search-system": Action.SEARCH,
    "search-compartment": Action.SEARCH,
    "query": Action.SEARCH,
    "create": Action.CREATE,
    "update": Action.UPDATE,
    "patch": Action.UPDATE,
    "delete": Action.DELETE,
    "print": Action.PRINT,
    "export": Action.EXPORT,
    "execute": Action.EXECUTE,
    "operation": Action.EXECUTE,
    "batch": Action.EXECUTE,
    "transaction": Action.EXECUTE,
    # AuditEvent.action (http://hl7.org/fhir/audit-event-action)
    "c": Action.CREATE,
    "r": Action.READ,
    "u": Action.UPDATE,
    "d": Action.DELETE,
    "e": Action.EXECUTE,
    # DICOM event ids (http://dicom.nema.org/resources/ontology/DCM)
    "110106": Action.EXPORT,  # Export
    "110107": Action.CREATE,  # Import
    "110110": Action.READ,  # Patient Record
    "110112": Action.SEARCH,  # Query
    "110103": Action.READ,  # DICOM Instances Accessed
}

#: FHIR R4 ``AuditEvent.outcome`` codes (and the words CSV exports use) to ``Outcome``.
OUTCOME_CODES: dict[str, str] = {
    "0": Outcome.SUCCESS,
    "4": Outcome.MINOR_FAILURE,
    "8": Outcome.SERIOUS_FAILURE,
    "12": Outcome.MAJOR_FAILURE,
    "success": Outcome.SUCCESS,
    "ok": Outcome.SUCCESS,
    "minor_failure": Outcome.MINOR_FAILURE,
    "serious_failure": Outcome.SERIOUS_FAILURE,
    "major_failure": Outcome.MAJOR_FAILURE,
    "failure": Outcome.SERIOUS_FAILURE,
    "denied": Outcome.SERIOUS_FAILURE,
}

#: HL7 v3 PurposeOfUse codes (v3-ActReason), the purposes an access may declare.
PURPOSE_OF_USE_CODES: frozenset[str] = frozenset(
    {
        "TREAT", "ETREAT", "BTG", "ERTREAT", "CAREMGT", "CLINTRL", "COC", "POPHLTH",
        "HPAYMT", "CLMATTCH", "COVAUTH", "COVERAGE", "ELIGDTRM", "ELIGVER", "ENROLLM",
        "MILDCRG", "REMITADV", "HOPERAT", "DONAT", "FRAUD", "GOV", "HACCRED", "HCOMPL",
        "HDECD", "HDIRECT", "HDM", "HLEGAL", "HOUTCOMS", "HPRGRP", "HQUALIMP",
        "HSYSADMIN", "LABELING", "METAMGT", "MEMADMIN", "MILCDM", "PATADMIN", "PATSFTY",
        "PERFMSR", "RECORDMGT", "SYSDEV", "HTEST", "TRAIN", "HMARKT", "HRESCH", "BIORCH",
        "CLINTRCH", "CLINTRCHNPC", "CLINTRCHPC", "PRECLINTRCH", "DSRCH", "POARCH",
        "TRANSRCH", "PATRQT", "FAMRQT", "PWATRNY", "SUPNWK", "PUBHLTH", "DISASTER",
        "THREAT", "HRECORDS", "PUBLICHEALTH", "LEGAL", "CRIMINAL",
    }
)  # fmt: skip
