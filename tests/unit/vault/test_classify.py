"""The sensitivity classifier: a table of small resources, then the Synthea sample."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter

import pytest

from custodes.keys.envelope import Tier
from custodes.vault.classify import (
    ACT_CODE,
    CONFIDENTIALITY,
    DENY_TERMS,
    ICD10CM,
    LOINC,
    RXNORM,
    SECURITY_LABELS,
    SNOMED,
    Classification,
    SensitivityClassifier,
)

ORG, STD, SEN = Tier.ORGANISATIONAL, Tier.STANDARD, Tier.SENSITIVE
SSN = "536-22-8726"  # a well-formed number, not a real person's


@pytest.fixture(scope="module")
def classifier() -> SensitivityClassifier:
    return SensitivityClassifier()


def coded(resource_type: str, field: str, system: str, code: str, **extra) -> dict:
    return {"resourceType": resource_type, "subject": {"reference": "Patient/p1"},
            field: {"coding": [{"system": system, "code": code}]}, **extra}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CASES = [
    # (name, resource, tier, categories)
    ("organization", {"resourceType": "Organization", "name": "General Hospital"}, ORG, set()),
    ("location", {"resourceType": "Location", "name": "Ward 3"}, ORG, set()),
    ("practitioner role", {"resourceType": "PractitionerRole", "code": [
        {"coding": [{"system": SNOMED, "code": "80584001"}]}]}, ORG, set()),
    ("practitioner, plain narrative",
     {"resourceType": "Practitioner", "text": {"div": "<div>Dr A. Jones, cardiology</div>"}}, ORG, set()),
    ("practitioner, PHI in narrative",
     {"resourceType": "Practitioner",
      "text": {"div": f"<div>Saw my patient, <b>SSN {SSN}</b></div>"}}, STD, {"phi-in-text"}),
    ("methadone clinic names no patient",
     {"resourceType": "Organization", "name": "x", "text": {"div": "<div>Methadone clinic</div>"}},
     ORG, {"substance-use"}),
    ("plain observation", coded("Observation", "code", LOINC, "8867-4"), STD, set()),
    ("patient", {"resourceType": "Patient", "gender": "female"}, STD, set()),
    # codes, one per category and system
    ("HIV test", coded("Observation", "code", LOINC, "56888-1"), SEN, {"hiv"}),
    ("HIV status (Synthea)", coded("Observation", "code", LOINC, "55277-8"), SEN, {"hiv"}),
    ("HIV infection", coded("Condition", "code", SNOMED, "86406008"), SEN, {"hiv"}),
    ("HIV ICD-10-CM", coded("Condition", "code", ICD10CM, "B20"), SEN, {"hiv"}),
    ("HIV drug", coded("MedicationRequest", "medicationCodeableConcept", RXNORM, "195085"),
     SEN, {"hiv"}),
    ("substance abuse", coded("Condition", "code", SNOMED, "66214007"), SEN, {"substance-use"}),
    ("opioid use ICD-10-CM", coded("Condition", "code", ICD10CM, "F11.20"), SEN, {"substance-use"}),
    ("nicotine is not Part 2", coded("Condition", "code", ICD10CM, "F17.210"), STD, set()),
    ("rehab encounter type", coded("Encounter", "type", SNOMED, "56876005"), SEN, {"substance-use"}),
    ("buprenorphine", coded("MedicationRequest", "medicationCodeableConcept", RXNORM, "1819"),
     SEN, {"substance-use"}),
    ("depression", coded("Condition", "code", SNOMED, "35489007"), SEN, {"mental-health"}),
    ("major depression", coded("Condition", "code", SNOMED, "36923009"), SEN, {"mental-health"}),
    ("PHQ-9", coded("Observation", "code", LOINC, "44261-6"), SEN, {"mental-health"}),
    ("depression ICD-10-CM, dotted", coded("Condition", "code", ICD10CM, "f32.9"),
     SEN, {"mental-health"}),
    ("reason code", coded("Procedure", "reasonCode", SNOMED, "47505003"), SEN, {"mental-health"}),
    ("psychotherapy", coded("Procedure", "code", SNOMED, "75516001"), SEN, {"psychotherapy-notes"}),
    ("pregnancy", coded("Condition", "code", SNOMED, "72892002"), SEN, {"reproductive-health"}),
    ("pregnancy ICD-10-CM", coded("Condition", "code", ICD10CM, "O80"), SEN, {"reproductive-health"}),
    ("IUD", coded("MedicationRequest", "medicationCodeableConcept", RXNORM, "807283"),
     SEN, {"reproductive-health"}),
    ("sexual orientation", coded("Observation", "code", LOINC, "76690-7"),
     SEN, {"reproductive-health"}),
    ("genetic report", coded("DiagnosticReport", "code", LOINC, "51969-4"), SEN, {"genetics"}),
    ("aneuploidy screening", coded("Procedure", "code", SNOMED, "443529005"), SEN, {"genetics"}),
    ("genetic susceptibility", coded("Condition", "code", ICD10CM, "Z15.01"), SEN, {"genetics"}),
    ("value coded", coded("Observation", "valueCodeableConcept", SNOMED, "165816005"), SEN, {"hiv"}),
    ("category coded", {"resourceType": "Observation", "category": [
        {"coding": [{"system": SNOMED, "code": "35489007"}]}]}, SEN, {"mental-health"}),
    ("claim item", {"resourceType": "Claim", "item": [{"productOrService": {
        "coding": [{"system": SNOMED, "code": "714812005"}]}}]}, SEN, {"reproductive-health"}),
    ("OID spelling", coded("Condition", "code", "urn:oid:2.16.840.1.113883.6.96", "86406008"),
     SEN, {"hiv"}),
    ("same code, other system", coded("Condition", "code", "http://example.org", "86406008"),
     STD, set()),
    # free text
    ("SSN in a note", {"resourceType": "Observation", "note": [{"text": f"SSN {SSN}"}]},
     STD, {"phi-in-text"}),
    ("MRN with colon", {"resourceType": "Observation", "valueString": "MRN: 123456"},
     STD, {"phi-in-text"}),
    ("MRN with dash", {"resourceType": "Observation", "valueString": "see MRN 12-34567"},
     STD, {"phi-in-text"}),
    ("bare number is no MRN", {"resourceType": "Observation", "valueString": "lot 12-34567"},
     STD, set()),
    ("e-mail", {"resourceType": "Observation", "valueString": "write to jo@example.org"},
     STD, {"phi-in-text"}),
    ("phone", {"resourceType": "Observation", "valueString": "call (617) 555-0123"},
     STD, {"phi-in-text"}),
    ("international phone", {"resourceType": "Observation",
                             "valueString": "daughter on +44 20 7946 0958"}, STD, {"phi-in-text"}),
    ("no digits, no terms", {"resourceType": "Observation",
                             "valueString": "Reviewed the plan with the patient."}, STD, set()),
    ("HIV term in narrative",
     {"resourceType": "Encounter", "text": {"div": "<div>Discussed <i>HIV</i> results</div>"}},
     SEN, {"hiv"}),
    ("methadone in a note", {"resourceType": "MedicationRequest",
                             "note": [{"text": "continue methadone 60 mg"}]}, SEN, {"substance-use"}),
    ("base64 document",
     {"resourceType": "DocumentReference", "content": [{"attachment": {
         "contentType": "text/plain", "data": b64("Psychotherapy session. MRN: 7654321")}}]},
     SEN, {"psychotherapy-notes", "phi-in-text"}),
    ("base64 report",
     {"resourceType": "DiagnosticReport", "presentedForm": [{
         "contentType": "text/plain; charset=utf-8", "data": b64("Pregnancy test positive")}]},
     SEN, {"reproductive-health"}),
    ("PDF is not read as text",
     {"resourceType": "DocumentReference", "content": [{"attachment": {
         "contentType": "application/pdf", "data": b64("HIV")}}]}, STD, set()),
]


@pytest.mark.parametrize(("resource", "tier", "categories"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_table(classifier, resource, tier, categories):
    result = classifier.classify(resource)
    assert isinstance(result, Classification)
    assert (result.tier, set(result.categories)) == (tier, categories), result.reasons
    assert result.reasons or not categories


@pytest.mark.parametrize(("system", "code"), sorted(SECURITY_LABELS))
def test_each_label(classifier, system, code):
    resource = {"resourceType": "Observation", "meta": {"security": [
        {"system": system, "code": code}]}}
    result = classifier.classify(resource)
    assert result.tier is SEN
    assert result.categories == {SECURITY_LABELS[(system, code)][0]}
    assert result.reasons[0].startswith(f"security label {code} ")


def test_labels_other_than_sensitivity_do_not_count(classifier):
    resource = {"resourceType": "Observation", "meta": {"security": [
        {"system": CONFIDENTIALITY, "code": "N"}, {"system": ACT_CODE, "code": "HTEST"}]}}
    assert classifier.classify(resource).tier is STD


@pytest.mark.parametrize("category", sorted(DENY_TERMS))
def test_each_deny_list(classifier, category):
    term = DENY_TERMS[category][0]
    result = classifier.classify({"resourceType": "Observation",
                                  "valueString": f"Noted: {term.upper()}."})
    assert result.tier is SEN and category in result.categories


def test_reasons_never_hold_the_value(classifier):
    text = f"SSN {SSN}, MRN: 123456, jo@example.org, (617) 555-0123"
    result = classifier.classify({"resourceType": "Observation", "valueString": text,
                                  "note": [{"text": text}]})
    assert "valueString holds a US_SSN" in result.reasons
    assert "note holds an MRN" in result.reasons
    for value in (SSN, "123456", "jo@example.org", "555-0123"):
        assert all(value not in reason for reason in result.reasons)


def test_reason_names_the_code(classifier):
    result = classifier.classify(coded("Observation", "code", LOINC, "56888-1"))
    assert result.reasons == ("LOINC 56888-1 (HIV test)",)


def test_free_text_off_reads_codes_and_labels_only():
    classifier = SensitivityClassifier(free_text=False)
    assert classifier.classify({"resourceType": "Observation", "valueString": "HIV"}).tier is STD
    assert classifier.classify(coded("Condition", "code", SNOMED, "86406008")).tier is SEN


def test_bad_base64_is_named_not_raised(classifier):
    result = classifier.classify({"resourceType": "DocumentReference", "content": [
        {"attachment": {"contentType": "text/plain", "data": "not base64!"}}]})
    assert result.tier is STD
    assert result.reasons == ("content.attachment is not valid base64, not scanned",)


def test_synthea_sample(classifier, synthea_dir):
    files = sorted(synthea_dir.glob("*.json.gz"))[:20]
    tiers: Counter = Counter()
    hiv_status = mental = 0
    for path in files:
        with gzip.open(path) as f:
            bundle = json.load(f)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            result = classifier.classify(resource)
            tiers[result.tier] += 1
            kind = resource["resourceType"]
            if kind in ("Organization", "Practitioner"):
                assert result.tier is ORG, result.reasons
            elif kind == "Patient":
                assert result.tier is STD
            codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
            if "55277-8" in codes:  # HIV status
                hiv_status += 1
                assert result.tier is SEN and "hiv" in result.categories
            if codes & {"192127007", "47505003", "171207006"}:  # ADHD, PTSD, screening
                mental += 1
                assert result.tier is SEN and "mental-health" in result.categories
    assert sum(tiers.values()) > 1000
    assert tiers[ORG] and tiers[STD] and tiers[SEN]
    assert tiers[SEN] < tiers[STD]  # most of a record is ordinary PHI
    assert hiv_status + mental > 0


def test_the_page_lists_every_code_label_and_term():
    from pathlib import Path

    from custodes.vault.classify import CODE_LISTS, ICD10CM_PREFIXES

    page = (Path(__file__).resolve().parents[3] / "docs" / "sensitivity.md").read_text()
    codes = [code for systems in CODE_LISTS.values() for codes in systems.values() for code in codes]
    codes += [code for _, code in SECURITY_LABELS]
    missing = [code for code in codes if f"`{code}`" not in page]
    assert not missing, f"docs/sensitivity.md does not list {missing}"
    for prefix in ("B20", "F10", "F20", "O00", "Z30", "A50", "Z15", "Q90"):
        assert prefix in ICD10CM_PREFIXES and f"`{prefix}`" in page
    for terms in DENY_TERMS.values():
        assert all(term in page for term in terms)
