"""Context readers: FHIR R4 resources and documented CSVs to ``core`` entities."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from custodes.core.entities import (
    Address,
    Department,
    Encounter,
    Patient,
    RelatedPerson,
    StaffMember,
)
from custodes.core.errors import InputFormatError
from custodes.ingest import csv_context, fhir_context
from custodes.ingest.context_batch import ContextBatch
from custodes.ingest.csv_context import CONTEXT_CSV_HEADERS, read_csv_context
from custodes.ingest.fhir_context import read_fhir_context

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "context"
HOSPITAL = FIXTURES / "hospital.ndjson"


def _hospital_resources() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in HOSPITAL.read_bytes().splitlines() if line.strip()]


def _ndjson(tmp_path: Path, resources: list[Any], name: str = "context.ndjson") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")
    return path


def _bundle(
    tmp_path: Path,
    resources: list[dict[str, Any]],
    bundle_type: str = "collection",
    name: str = "bundle.json",
) -> Path:
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{resource.get('id', 'none')}"}
        entry["resource"] = resource
        if bundle_type == "transaction":
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        if bundle_type == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
    path = tmp_path / name
    path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    return path


def _gzip(path: Path) -> Path:
    zipped = path.with_name(path.name + ".gz")
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    return zipped


def _patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", **fields}


def _encounter(**fields: Any) -> dict[str, Any]:
    base = {
        "resourceType": "Encounter",
        "id": "e1",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-01-02T03:04:05Z"},
    }
    return {**base, **fields}


def _only(batch: ContextBatch) -> Any:
    entities = [
        *batch.staff,
        *batch.patients,
        *batch.encounters,
        *batch.related_persons,
        *batch.departments,
    ]
    assert batch.quarantined == [], [q.reason for q in batch.quarantined]
    assert len(entities) == 1, entities
    return entities[0]


# --- ContextBatch ----------------------------------------------------------------------


def test_batch_extend_adds_every_list_and_count():
    batch = ContextBatch(staff=[StaffMember("s1")], records_read=2, skipped=1)
    batch.extend(
        ContextBatch(
            patients=[Patient("p1")],
            departments=[Department("d1")],
            related_persons=[RelatedPerson("r1", "p1")],
            encounters=[Encounter("e1", "p1", datetime(2024, 1, 1, tzinfo=UTC))],
            records_read=5,
            skipped=1,
        )
    )
    assert batch.accepted == 5
    assert (batch.records_read, batch.skipped) == (7, 2)
    assert ContextBatch().accepted == 0


# --- FHIR: the fixture hospital, every resource type --------------------------------------


@pytest.fixture
def hospital() -> ContextBatch:
    return read_fhir_context(HOSPITAL)


def test_hospital_counts(hospital):
    assert hospital.quarantined == []
    assert hospital.records_read == 13
    assert hospital.skipped == 1  # the Observation
    assert [s.staff_id for s in hospital.staff] == ["pr1", "pr2", "pr9"]
    assert [p.patient_id for p in hospital.patients] == ["pat1", "pat2"]
    assert [e.encounter_id for e in hospital.encounters] == ["enc1", "enc2"]
    assert hospital.accepted == 3 + 2 + 2 + 1 + 2


def test_practitioner_with_its_role(hospital):
    assert hospital.staff[0] == StaffMember(
        staff_id="pr1",
        family_name="Doe",  # the official name, not the old one
        given_names=("Jane", "Q"),
        role="doctor",  # the coding's display, lower-cased
        department="cardio",
        address=Address(
            line="1 Elm St., Apt 2",
            city="Springfield",
            state="MA",
            postal_code="01101",
            country="US",
        ),
        identifiers=("http://hl7.org/fhir/sid/us-npi|1234567890", "|jdoe"),
    )
    assert hospital.staff[1] == StaffMember("pr2", family_name="Roe", given_names=("Rick",))


def test_practitioner_role_without_its_practitioner_yields_a_staff_member(hospital):
    assert hospital.staff[2] == StaffMember("pr9", role="registered nurse", department="hosp")


def test_patient(hospital):
    assert hospital.patients[0] == Patient(
        patient_id="pat1",
        family_name="Smith",
        given_names=("Alice",),
        address=Address(
            line="9 Oak Ave",
            city="Springfield",
            state="MA",
            postal_code="01101",
            latitude=42.1,
            longitude=-71.2,
        ),
        birth_date=date(1980, 4, 2),
        vip=True,
        staff_id="pr2",
        sensitive_categories=("hiv",),
        identifiers=("http://hospital.example.org/mrn|MRN001", "urn:custodes:staff|pr2"),
    )
    deceased = hospital.patients[1]
    assert deceased.deceased
    assert deceased.deceased_at == datetime(2023, 5, 1, 8, 30, tzinfo=UTC)
    assert not deceased.vip


def test_encounter_with_attending_and_care_team_merged(hospital):
    assert hospital.encounters[0] == Encounter(
        encounter_id="enc1",
        patient_id="pat1",
        start=datetime(2024, 3, 1, 8, tzinfo=UTC),
        end=datetime(2024, 3, 3, 12, tzinfo=UTC),
        department="cardio",
        attending_id="pr1",  # typed ATND, though listed second
        care_team=("pr2", "pr1", "pr3"),  # participants, then the CareTeam's new members
        encounter_class="inpatient",
    )


def test_encounter_through_a_practitioner_role_and_a_location(hospital):
    assert hospital.encounters[1] == Encounter(
        encounter_id="enc2",
        patient_id="pat2",
        start=datetime(2024, 3, 6, 4, 15, tzinfo=UTC),
        department="er-bay-3",
        attending_id="pr9",  # PractitionerRole/role9 resolved; the RelatedPerson is no staff
        care_team=("pr9",),
        encounter_class="emergency",
    )


def test_related_person_and_departments(hospital):
    assert hospital.related_persons == [
        RelatedPerson(
            related_id="rel1",
            patient_id="pat2",
            relationship="SPS",
            family_name="Brown",
            given_names=("Carol",),
            address=Address(line="5 Pine Rd", city="Springfield", postal_code="01102"),
            staff_id="pr2",
        )
    ]
    assert hospital.departments == [
        Department("hosp", "Saint Example Hospital"),
        Department("cardio", "Cardiology", part_of="hosp"),
    ]


# --- FHIR: NDJSON, Bundles, gzip ------------------------------------------------------------


@pytest.mark.parametrize("bundle_type", ["collection", "searchset", "transaction", "batch"])
def test_bundle_reads_as_ndjson_does(tmp_path, hospital, bundle_type):
    batch = read_fhir_context(_bundle(tmp_path, _hospital_resources(), bundle_type))
    assert batch == hospital


@pytest.mark.parametrize("as_bundle", [False, True], ids=["ndjson", "bundle"])
def test_gzip_reads_as_plain_does(tmp_path, hospital, as_bundle):
    resources = _hospital_resources()
    plain = _bundle(tmp_path, resources) if as_bundle else _ndjson(tmp_path, resources)
    zipped = _gzip(plain)
    batch = read_fhir_context(zipped)
    assert (batch.staff, batch.patients, batch.encounters) == (
        hospital.staff,
        hospital.patients,
        hospital.encounters,
    )


def test_lone_resource_document_pretty_printed(tmp_path):
    path = tmp_path / "patient.json"
    path.write_bytes(orjson.dumps(_patient(birthDate="1990-01-01"), option=orjson.OPT_INDENT_2))
    assert _only(read_fhir_context(path)) == Patient("p1", birth_date=date(1990, 1, 1))


def test_byte_order_mark_and_crlf_are_read(tmp_path):
    path = tmp_path / "bom.ndjson"
    lines = [orjson.dumps(_patient()), orjson.dumps(_patient(id="p2"))]
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    batch = read_fhir_context(path)
    assert [p.patient_id for p in batch.patients] == ["p1", "p2"]


def test_empty_file_is_an_empty_batch(tmp_path):
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"\n\n")
    assert read_fhir_context(path) == ContextBatch()


def test_transaction_entries_without_ids_take_their_full_url(tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:aaaa-1",
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:bbbb-2",
                "resource": {
                    "resourceType": "Encounter",
                    "subject": {"reference": "urn:uuid:aaaa-1"},
                    "period": {"start": "2024-01-01"},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
        ],
    }
    path = tmp_path / "tx.json"
    path.write_bytes(orjson.dumps(bundle))
    batch = read_fhir_context(path)
    assert batch.quarantined == []
    assert batch.patients == [Patient("aaaa-1")]
    assert batch.encounters == [Encounter("bbbb-2", "aaaa-1", datetime(2024, 1, 1, tzinfo=UTC))]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"reference": "Patient/p1"}, "p1"),
        ({"reference": "http://ehr.example.org/fhir/Patient/p1"}, "p1"),
        ({"reference": "http://ehr.example.org/fhir/Patient/p1/_history/7"}, "p1"),
        ({"reference": "urn:uuid:p1"}, "p1"),
        ({"reference": "urn:uuid:full-url-of-p1"}, "p1"),  # through the Bundle's fullUrl
        ({"identifier": {"system": "http://hospital.example.org/mrn", "value": "p1"}}, "p1"),
        (
            {
                "type": "http://hl7.org/fhir/StructureDefinition/Patient",
                "identifier": {"value": "p1"},
            },
            "p1",
        ),
    ],
    ids=[
        "relative",
        "absolute",
        "history",
        "urn-uuid",
        "urn-uuid-fullurl",
        "identifier",
        "typed-identifier",
    ],
)
def test_reference_forms(tmp_path, reference, expected):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:full-url-of-p1", "resource": _patient()},
            {"fullUrl": "urn:uuid:e1", "resource": _encounter(subject=reference)},
        ],
    }
    path = tmp_path / "refs.json"
    path.write_bytes(orjson.dumps(bundle))
    batch = read_fhir_context(path)
    assert batch.quarantined == []
    assert batch.encounters[0].patient_id == expected


# --- FHIR: mapping tables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encounter_class", "expected"),
    [
        ({"code": "IMP"}, "inpatient"),
        ({"code": "ACUTE"}, "inpatient"),
        ({"code": "NONAC"}, "inpatient"),
        ({"code": "EMER"}, "emergency"),
        ({"code": "AMB"}, "ambulatory"),
        ({"code": "HH"}, "hh"),
        ({"code": "VR"}, "vr"),
        ([{"coding": [{"code": "EMER"}]}], "emergency"),  # R5: a list of CodeableConcepts
        (None, None),
    ],
)
def test_encounter_class(tmp_path, encounter_class, expected):
    resource = _encounter() if encounter_class is None else _encounter(**{"class": encounter_class})
    assert _only(read_fhir_context(_ndjson(tmp_path, [resource]))).encounter_class == expected


def _participant(staff_id: str, *codes: str) -> dict[str, Any]:
    participant: dict[str, Any] = {"individual": {"reference": f"Practitioner/{staff_id}"}}
    if codes:
        participant["type"] = [{"coding": [{"code": c} for c in codes]}]
    return participant


@pytest.mark.parametrize(
    ("participants", "attending", "care_team"),
    [
        ([], None, ()),
        ([_participant("a")], "a", ("a",)),
        ([_participant("a", "ADM"), _participant("b", "ATND")], "b", ("a", "b")),
        ([_participant("a"), _participant("b", "PPRF")], "b", ("a", "b")),
        ([_participant("a", "PPRF"), _participant("b", "ATND")], "a", ("a", "b")),
        ([_participant("a"), _participant("a", "ATND")], "a", ("a",)),
        (
            [{"individual": {"reference": "RelatedPerson/r1"}}, _participant("c")],
            "c",
            ("c",),
        ),
    ],
    ids=["none", "one", "atnd", "pprf", "first-typed", "repeated", "not-staff"],
)
def test_encounter_participants(tmp_path, participants, attending, care_team):
    encounter = _only(read_fhir_context(_ndjson(tmp_path, [_encounter(participant=participants)])))
    assert (encounter.attending_id, encounter.care_team) == (attending, care_team)


@pytest.mark.parametrize(
    ("fields", "department"),
    [
        ({"serviceProvider": {"reference": "Organization/o1"}}, "o1"),
        ({"location": [{"location": {"reference": "Location/ward-4"}}]}, "ward-4"),
        (
            {
                "serviceProvider": {"reference": "Organization/o1"},
                "location": [{"location": {"reference": "Location/ward-4"}}],
            },
            "o1",
        ),
        ({}, None),
    ],
    ids=["service-provider", "location", "both", "neither"],
)
def test_encounter_department(tmp_path, fields, department):
    assert _only(read_fhir_context(_ndjson(tmp_path, [_encounter(**fields)]))).department == (
        department
    )


@pytest.mark.parametrize(
    ("security", "vip"),
    [
        ([], False),
        ([{"code": "VIP"}], True),
        (
            [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            True,
        ),
        (
            [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}],
            True,
        ),
        (
            [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}],
            False,
        ),
        ([{"system": "http://example.org/other", "code": "R"}], False),
        ([{"code": "HIV"}], False),
    ],
    ids=["none", "vip", "restricted", "very-restricted", "normal", "r-other-system", "hiv"],
)
def test_patient_vip(tmp_path, security, vip):
    patient = _only(read_fhir_context(_ndjson(tmp_path, [_patient(meta={"security": security})])))
    assert patient.vip is vip


@pytest.mark.parametrize(
    ("codes", "categories"),
    [
        (["HIV"], ("hiv",)),
        (["ETH"], ("substance-use",)),
        (["PSY"], ("mental-health",)),
        (["PSYTHPN"], ("mental-health",)),
        (["SEX"], ("reproductive",)),
        (["SDV"], ("reproductive",)),
        (["GDIS"], ("genetics",)),
        (["PSY", "HIV", "PSYTHPN", "R"], ("mental-health", "hiv")),
        (["N"], ()),
    ],
)
def test_patient_sensitive_categories(tmp_path, codes, categories):
    security = [{"code": c} for c in codes]
    patient = _only(read_fhir_context(_ndjson(tmp_path, [_patient(meta={"security": security})])))
    assert patient.sensitive_categories == categories


@pytest.mark.parametrize(
    ("fields", "deceased", "deceased_at"),
    [
        ({}, False, None),
        ({"deceasedBoolean": True}, True, None),
        ({"deceasedBoolean": False}, False, None),
        (
            {"deceasedDateTime": "2020-02-03T04:05:06-01:00"},
            True,
            datetime(2020, 2, 3, 5, 5, 6, tzinfo=UTC),
        ),
        ({"deceasedDateTime": "2020-02-03"}, True, datetime(2020, 2, 3, tzinfo=UTC)),
        ({"deceasedDateTime": "2020"}, True, None),  # partial: not guessed
    ],
)
def test_patient_deceased(tmp_path, fields, deceased, deceased_at):
    patient = _only(read_fhir_context(_ndjson(tmp_path, [_patient(**fields)])))
    assert (patient.deceased, patient.deceased_at) == (deceased, deceased_at)


@pytest.mark.parametrize(
    ("birth_date", "expected"),
    [("1970-03-04", date(1970, 3, 4)), ("1970-03", None), ("1970", None)],
)
def test_patient_birth_date_partial_is_not_guessed(tmp_path, birth_date, expected):
    patient = _only(read_fhir_context(_ndjson(tmp_path, [_patient(birthDate=birth_date)])))
    assert patient.birth_date == expected


@pytest.mark.parametrize(
    ("names", "family", "given"),
    [
        ([], None, ()),
        ([{"family": "A", "given": ["X"]}], "A", ("X",)),
        ([{"use": "maiden", "family": "M"}, {"family": "B"}], "B", ()),
        ([{"use": "usual", "family": "U"}, {"use": "official", "family": "O"}], "O", ()),
        ([{"use": "old", "family": "Z"}], "Z", ()),
    ],
    ids=["none", "plain", "not-maiden", "official", "only-old"],
)
def test_name_preference(tmp_path, names, family, given):
    patient = _only(read_fhir_context(_ndjson(tmp_path, [_patient(name=names)])))
    assert (patient.family_name, patient.given_names) == (family, given)


@pytest.mark.parametrize(
    ("geolocation", "expected"),
    [
        (
            [{"url": "latitude", "valueDecimal": 1.5}, {"url": "longitude", "valueDecimal": -2}],
            (1.5, -2.0),
        ),
        (
            [{"url": "latitude", "valueDecimal": 91}, {"url": "longitude", "valueDecimal": 0}],
            (None, None),
        ),
        (
            [{"url": "latitude", "valueDecimal": "1"}, {"url": "longitude", "valueDecimal": 0}],
            (None, None),
        ),
        ([{"url": "latitude", "valueDecimal": 1}], (None, None)),
    ],
    ids=["numbers", "out-of-range", "text", "half"],
)
def test_geolocation(tmp_path, geolocation, expected):
    extension = {
        "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
        "extension": geolocation,
    }
    resource = _patient(address=[{"line": ["1 Main St"], "extension": [extension]}])
    address = _only(read_fhir_context(_ndjson(tmp_path, [resource]))).address
    assert (address.line, (address.latitude, address.longitude)) == ("1 Main St", expected)


def test_inactive_role_does_not_name_the_job(tmp_path):
    resources = [
        {"resourceType": "Practitioner", "id": "d1"},
        {
            "resourceType": "PractitionerRole",
            "id": "old",
            "active": False,
            "practitioner": {"reference": "Practitioner/d1"},
            "code": [{"text": "Resident"}],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "now",
            "practitioner": {"reference": "Practitioner/d1"},
            "organization": {"reference": "Organization/icu"},
            "code": [{"coding": [{"code": "NURSE"}]}],
        },
    ]
    assert _only(read_fhir_context(_ndjson(tmp_path, resources))) == StaffMember(
        "d1", role="nurse", department="icu"
    )


def test_care_team_for_an_encounter_later_in_the_file(tmp_path):
    care_team = {
        "resourceType": "CareTeam",
        "id": "ct",
        "encounter": {"reference": "Encounter/e1"},
        "participant": [{"member": {"reference": "Practitioner/n1"}}],
    }
    encounter = _only(read_fhir_context(_ndjson(tmp_path, [care_team, _encounter()])))
    assert encounter.care_team == ("n1",)


@pytest.mark.parametrize(
    "resource_type", ["Observation", "Claim", "Condition", "ExplanationOfBenefit", "Location"]
)
def test_other_resource_types_are_skipped_not_quarantined(tmp_path, resource_type):
    batch = read_fhir_context(_ndjson(tmp_path, [{"resourceType": resource_type}]))
    assert (batch.records_read, batch.skipped, batch.accepted, batch.quarantined) == (1, 1, 0, [])


# --- FHIR: quarantine -----------------------------------------------------------------------

SECRET = "Zebulon-Secret-1957"  # stands for PHI: a reason must never quote it


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"resourceType": "Patient", "id": "' + SECRET.encode(), "malformed JSON"),
        (orjson.dumps([SECRET]), "not a FHIR resource (not a JSON object)"),
        (orjson.dumps({"id": SECRET}), "not a FHIR resource (no resourceType)"),
        (
            orjson.dumps({"resourceType": "Patient", "name": [{"family": SECRET}]}),
            "Patient without an id",
        ),
        (orjson.dumps({"resourceType": "Practitioner"}), "Practitioner without an id"),
        (orjson.dumps({"resourceType": "Patient", "id": 7}), "Patient.id is not a string"),
        (
            orjson.dumps(_patient(birthDate=SECRET)),
            "bad date in Patient.birthDate (expected YYYY-MM-DD)",
        ),
        (
            orjson.dumps(_patient(birthDate="1980-02-30")),
            "bad date in Patient.birthDate (expected YYYY-MM-DD)",
        ),
        (
            orjson.dumps(_patient(deceasedBoolean=SECRET)),
            "Patient.deceasedBoolean is not a boolean",
        ),
        (orjson.dumps(_patient(name=SECRET)), "Patient.name is not a list of objects"),
        (
            orjson.dumps(_patient(name=[{"given": SECRET}])),
            "Patient.name.given is not a list of strings",
        ),
        (orjson.dumps(_encounter(subject=None)), "Encounter without a subject"),
        (
            orjson.dumps(_encounter(subject={"reference": "Group/" + SECRET})),
            "Encounter.subject does not reference a Patient",
        ),
        (
            orjson.dumps(_encounter(period={"end": "2024-01-01T00:00:00Z"})),
            "Encounter without period.start",
        ),
        (
            orjson.dumps(_encounter(period={"start": SECRET})),
            "bad date-time in Encounter.period.start (expected ISO 8601 with a UTC offset)",
        ),
        (
            orjson.dumps(_encounter(period={"start": "2024-01-02T03:04:05"})),
            "bad date-time in Encounter.period.start (a time needs a UTC offset)",
        ),
        (
            orjson.dumps(_encounter(period={"start": "2024-01"})),
            "Encounter.period.start is less precise than a day",
        ),
        (
            orjson.dumps(
                _encounter(period={"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"})
            ),
            "Encounter.period.end is before period.start",
        ),
        (
            orjson.dumps(_encounter(status="entered-in-error")),
            "Encounter entered-in-error: not a reason to see the patient",
        ),
        (
            orjson.dumps(
                {"resourceType": "CareTeam", "id": "c", "encounter": {"reference": "Encounter/x"}}
            ),
            "CareTeam refers to an encounter not in this file",
        ),
        (
            orjson.dumps({"resourceType": "CareTeam", "id": "c"}),
            "CareTeam without an encounter: only encounter care teams are read",
        ),
        (
            orjson.dumps({"resourceType": "PractitionerRole", "id": "r"}),
            "PractitionerRole without a practitioner reference",
        ),
        (
            orjson.dumps({"resourceType": "RelatedPerson", "id": "r"}),
            "RelatedPerson without a patient",
        ),
        (orjson.dumps({"resourceType": "Bundle", "type": "collection"}), "a Bundle inside a file"),
    ],
)
def test_fhir_quarantine_reason_and_line(tmp_path, line, reason):
    path = tmp_path / "context.ndjson"
    good = orjson.dumps(_patient(id="good"))
    path.write_bytes(good + b"\n\n" + line + b"\n" + orjson.dumps(_patient(id="after")) + b"\n")
    batch = read_fhir_context(path)
    assert [p.patient_id for p in batch.patients] == ["good", "after"]
    assert len(batch.quarantined) == 1
    record = batch.quarantined[0]
    assert (record.source_format, record.source_file, record.line) == (
        "fhir-context",
        "context.ndjson",
        3,  # after a resource and a blank line
    )
    assert record.reason.startswith(reason)
    assert SECRET not in record.reason
    assert record.raw == line.decode()
    assert batch.records_read == 3


def test_duplicate_id_keeps_the_first(tmp_path):
    batch = read_fhir_context(
        _ndjson(tmp_path, [_patient(gender="a"), _patient(birthDate="2000-01-01")])
    )
    assert batch.patients == [Patient("p1")]
    assert [(q.line, q.reason) for q in batch.quarantined] == [
        (2, "duplicate Patient id in this file; the first is kept")
    ]


def test_bundle_quarantine_numbers_entries_and_keeps_the_entry(tmp_path):
    bad = _encounter(period={"start": "yesterday"})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": _patient()},
            {"fullUrl": "http://x/fhir/Encounter/e1", "resource": bad, "search": {"mode": "match"}},
            {"request": {"method": "DELETE", "url": "Patient/p9"}},
        ],
    }
    path = tmp_path / "search.json"
    path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    batch = read_fhir_context(path)
    assert [(q.line, q.reason.split(" (")[0]) for q in batch.quarantined] == [
        (2, "bad date-time in Encounter.period.start"),
        (3, "Bundle entry without a resource"),
    ]
    assert orjson.loads(batch.quarantined[0].raw) == bundle["entry"][1]
    assert orjson.loads(batch.quarantined[1].raw) == bundle["entry"][2]
    assert batch.records_read == 3


def test_broken_document_is_one_quarantined_record(tmp_path):
    path = tmp_path / "broken.json"
    text = orjson.dumps(_patient(), option=orjson.OPT_INDENT_2).decode()[:-1]  # no closing brace
    path.write_text(text)
    batch = read_fhir_context(path)
    assert [(q.line, q.reason, q.raw) for q in batch.quarantined] == [
        (1, "malformed JSON document", text.rstrip("\n"))
    ]


# --- FHIR: the Synthea sample ---------------------------------------------------------------


def test_synthea_bundles(synthea_dir):
    batch = ContextBatch()
    files = sorted(synthea_dir.glob("*.json.gz"))
    for path in files:
        batch.extend(read_fhir_context(path))
    assert len(files) == 60
    assert batch.quarantined == []
    patient_ids = {p.patient_id for p in batch.patients}
    assert len(patient_ids) == len(batch.patients) == 60
    assert all(p.family_name and p.birth_date and p.address for p in batch.patients)
    assert all(p.address.latitude is not None for p in batch.patients)
    assert len(batch.encounters) > 1000
    assert all(e.patient_id in patient_ids and e.start is not None for e in batch.encounters)
    assert all(e.start.tzinfo is not None for e in batch.encounters)
    assert {e.encounter_class for e in batch.encounters} >= {"ambulatory", "inpatient", "emergency"}
    staff_ids = {s.staff_id for s in batch.staff}
    department_ids = {d.department_id for d in batch.departments}
    assert staff_ids and department_ids
    assert all(d.name for d in batch.departments)
    with_attending = [e for e in batch.encounters if e.attending_id]
    assert len(with_attending) > 0.9 * len(batch.encounters)
    assert all(e.attending_id in staff_ids for e in with_attending)
    assert all(e.department in department_ids for e in batch.encounters)
    assert batch.skipped > 0
    assert batch.records_read == batch.accepted + batch.skipped


# --- CSV: the four kinds --------------------------------------------------------------------


def test_csv_staff():
    batch = read_csv_context(FIXTURES / "staff.csv")
    assert batch.quarantined == []
    assert batch.staff == [
        StaffMember(
            staff_id="s1",
            family_name="Doe",
            given_names=("Jane", "Q"),
            role="physician",
            department="cardiology",
            address=Address(line="1 Elm St.", city="Springfield", state="MA", postal_code="01101"),
            hire_date=date(2015, 6, 1),
        ),
        StaffMember(
            staff_id="s2",
            family_name="Roe",
            given_names=("Rick",),
            role="nurse",
            department="emergency",
            hire_date=date(2019, 1, 15),
            termination_date=date(2024, 2, 29),
        ),
    ]
    assert (batch.records_read, batch.accepted) == (2, 2)


def test_csv_patients():
    batch = read_csv_context(FIXTURES / "patients.csv")
    assert batch.quarantined == []
    assert batch.patients == [
        Patient(
            patient_id="p1",
            family_name="Smith",
            given_names=("Alice",),
            address=Address(line="9 Oak Ave", city="Springfield", state="MA", postal_code="01101"),
            birth_date=date(1980, 4, 2),
            vip=True,
            staff_id="s2",
            sensitive_categories=("hiv", "mental-health"),
        ),
        Patient(
            patient_id="p2",
            family_name="Brown",
            given_names=("Bob",),
            birth_date=date(1950, 1, 20),
            deceased=True,
            deceased_at=datetime(2023, 5, 1, 8, 30, tzinfo=UTC),
        ),
        Patient(patient_id="p3", family_name="Green", deceased=True),
    ]


def test_csv_encounters():
    batch = read_csv_context(FIXTURES / "encounters.csv")
    assert batch.quarantined == []
    assert batch.encounters == [
        Encounter(
            encounter_id="e1",
            patient_id="p1",
            department="cardiology",
            start=datetime(2024, 3, 1, 8, tzinfo=UTC),
            end=datetime(2024, 3, 3, 12, tzinfo=UTC),
            attending_id="s1",
            care_team=("s1", "s2"),
            encounter_class="inpatient",
        ),
        Encounter(
            encounter_id="e2",
            patient_id="p2",
            department="emergency",
            start=datetime(2024, 3, 5, 23, 15, tzinfo=UTC),  # no offset: UTC
            attending_id="s2",
            care_team=("s2",),
            encounter_class="emergency",
        ),
    ]


def test_csv_related_persons():
    batch = read_csv_context(FIXTURES / "related_persons.csv")
    assert batch.quarantined == []
    assert batch.related_persons == [
        RelatedPerson(
            related_id="r1",
            patient_id="p2",
            relationship="SPS",
            family_name="Brown",
            given_names=("Carol",),
            address=Address(line="5 Pine Rd", city="Springfield", postal_code="01102"),
            staff_id="s2",
        ),
        RelatedPerson(related_id="r2", patient_id="p1", relationship="emergency contact"),
    ]


@pytest.mark.parametrize("kind", list(CONTEXT_CSV_HEADERS))
def test_csv_gzip_reads_as_plain_does(tmp_path, kind):
    plain = FIXTURES / f"{kind}.csv"
    zipped = tmp_path / f"{kind}.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_csv_context(zipped) == read_csv_context(plain)


def test_documented_headers_match_the_fixtures():
    for kind, columns in CONTEXT_CSV_HEADERS.items():
        header = (FIXTURES / f"{kind}.csv").read_text().splitlines()[0]
        assert tuple(header.split(",")) == columns
        for column in columns:
            assert column in csv_context.__doc__


# --- CSV: detecting the kind ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "row", "kind"),
    [
        ("staff_id", "s1", "staff"),
        ("staff_id,role,badge_colour", "s1,nurse,blue", "staff"),
        ("patient_id,staff_id", "p1,s1", "patients"),
        (" Patient_ID , Family_Name ", "p1,Smith", "patients"),
        ("start,patient_id,encounter_id", "2024-01-01,p1,e1", "encounters"),
        ("related_id,patient_id,staff_id", "r1,p1,s1", "related_persons"),
        (",".join(CONTEXT_CSV_HEADERS["staff"]), "s1" + "," * 10, "staff"),
        (",".join(CONTEXT_CSV_HEADERS["patients"]), "p1" + "," * 11, "patients"),
        (",".join(CONTEXT_CSV_HEADERS["encounters"]), "e1,p1,,2024-01-01,,,,", "encounters"),
        (",".join(CONTEXT_CSV_HEADERS["related_persons"]), "r1,p1" + "," * 8, "related_persons"),
    ],
)
def test_csv_kind_is_detected_from_the_header(tmp_path, header, row, kind):
    path = tmp_path / "context.csv"
    path.write_text(f"{header}\n{row}\n")
    batch = read_csv_context(path)
    assert batch.quarantined == []
    assert len(getattr(batch, kind)) == 1
    assert batch.accepted == 1


def test_csv_kind_given_overrides_detection(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("patient_id,staff_id,family_name\np1,s1,Smith\n")
    assert read_csv_context(path).patients == [Patient("p1", family_name="Smith", staff_id="s1")]
    assert read_csv_context(path, kind="staff").staff == [StaffMember("s1", family_name="Smith")]


@pytest.mark.parametrize(
    ("content", "kind", "fragment"),
    [
        ("name,address\nAlice,1 Elm St\n", None, "names no context kind"),
        ("encounter_id,patient_id\ne1,p1\n", None, "the encounters header lacks start"),
        ("patient_id\np1\n", "staff", "the staff header lacks staff_id"),
        ("", None, "is empty"),
        ("staff_id,role,role\ns1,a,b\n", None, "repeats role"),
    ],
    ids=["unknown", "missing-start", "kind-given", "empty", "repeated"],
)
def test_csv_unusable_header_raises(tmp_path, content, kind, fragment):
    path = tmp_path / "context.csv"
    path.write_text(content)
    with pytest.raises(InputFormatError) as raised:
        read_csv_context(path, kind=kind)
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message
    assert "Alice" not in message
    if fragment != "repeats role":
        assert "staff (staff_id)" in message
        assert "patients (patient_id)" in message
        assert "encounters (encounter_id, patient_id, start)" in message
        assert "related_persons (related_id, patient_id)" in message


def test_csv_unknown_kind_name_is_a_value_error(tmp_path):
    path = tmp_path / "context.csv"
    path.write_text("staff_id\ns1\n")
    with pytest.raises(ValueError, match="unknown context CSV kind"):
        read_csv_context(path, kind="nurses")


# --- CSV: cells -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2024-03-01T08:00:00Z", datetime(2024, 3, 1, 8, tzinfo=UTC)),
        ("2024-03-01T08:00:00+02:00", datetime(2024, 3, 1, 6, tzinfo=UTC)),
        ("2024-03-01T08:00:00.250-0500", datetime(2024, 3, 1, 13, 0, 0, 250000, tzinfo=UTC)),
        ("2024-03-01 08:00", datetime(2024, 3, 1, 8, tzinfo=UTC)),
        ("2024-03-01T08:00:00", datetime(2024, 3, 1, 8, tzinfo=UTC)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)
def test_csv_date_times_are_utc(tmp_path, start, expected):
    path = tmp_path / "encounters.csv"
    path.write_text(f"encounter_id,patient_id,start\ne1,p1,{start}\n")
    assert read_csv_context(path).encounters[0].start == expected


@pytest.mark.parametrize(
    ("vip", "expected"),
    [
        ("", False),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("1", True),
        ("no", False),
        ("0", False),
    ],
)
def test_csv_vip_words(tmp_path, vip, expected):
    path = tmp_path / "patients.csv"
    path.write_text(f"patient_id,vip\np1,{vip}\n")
    assert read_csv_context(path).patients[0].vip is expected


def test_csv_quoted_cells_with_commas_and_line_breaks(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text(
        "staff_id,family_name,address_line\n"
        's1,"Doe, Jr.","1 Elm St\nBuilding 2"\n'
        "s2,Roe,,extra\n"
        "s3,Poe,\n"
    )
    batch = read_csv_context(path)
    assert [s.staff_id for s in batch.staff] == ["s1", "s3"]
    assert batch.staff[0].family_name == "Doe, Jr."
    assert batch.staff[0].address == Address(line="1 Elm St\nBuilding 2")
    # The quoted line break makes the first record two lines long.
    assert [(q.line, q.reason) for q in batch.quarantined] == [
        (4, "has 4 fields, the header has 3")
    ]


# --- CSV: quarantine ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "row", "reason"),
    [
        ("staff", f"{SECRET},x", "has 2 fields, the header has 11"),
        ("staff", ",Doe,,,,,,,,,", "missing required field staff_id"),
        ("staff", f"s9,,,,,,,,,{SECRET},", "bad date in hire_date (expected YYYY-MM-DD)"),
        ("staff", "s9,,,,,,,,,2020-02-30,", "bad date in hire_date (expected YYYY-MM-DD)"),
        ("staff", "s9,,,,,,,,,2020-01-01,2019-12-31", "termination_date is before hire_date"),
        ("staff", "s1" + "," * 10, "duplicate staff_id in this file; the first is kept"),
        ("patients", f",{SECRET}" + "," * 10, "missing required field patient_id"),
        ("patients", f"p9,,,,,,,{SECRET},,,,", "bad date in birth_date (expected YYYY-MM-DD)"),
        ("patients", "p9,,,,,,,01/02/1980,,,,", "bad date in birth_date (expected YYYY-MM-DD)"),
        ("patients", f"p9,,,,,,,,,{SECRET},,", "bad value in vip (expected true or false)"),
        ("patients", f"p9,,,,,,,,{SECRET},,,", "bad value in deceased"),
        ("encounters", "e9,,,2024-01-01,,,,", "missing required field patient_id"),
        ("encounters", "e9,p1,,,,,,", "missing required field start"),
        ("encounters", f"e9,p1,,{SECRET},,,,", "bad date-time in start (expected ISO 8601)"),
        ("encounters", "e9,p1,,2024-01-02,2024-01-01,,,", "end is before start"),
        ("related_persons", "r9" + "," * 9, "missing required field patient_id"),
        ("related_persons", ",p1" + "," * 8, "missing required field related_id"),
        ("staff", 's9,"Do"e' + "," * 9, "malformed CSV record"),
    ],
)
def test_csv_quarantine_reason_and_line(tmp_path, kind, row, reason):
    fixture = (FIXTURES / f"{kind}.csv").read_text().splitlines()
    path = tmp_path / f"{kind}.csv"
    header, first_row, *later_rows = fixture
    path.write_text("\n".join([header, first_row, "", row, *later_rows]) + "\n")
    batch = read_csv_context(path)
    assert len(getattr(batch, kind)) == len(fixture) - 1
    assert len(batch.quarantined) == 1
    record = batch.quarantined[0]
    assert (record.source_format, record.source_file) == ("csv-context", path.name)
    assert record.line == 4  # header, a good row, a blank line, then this row
    assert record.reason.startswith(reason)
    assert SECRET not in record.reason
    assert record.raw == row
    assert batch.records_read == len(fixture)  # the good rows and this one


def test_csv_row_that_is_not_utf8_is_quarantined_alone(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes(b"staff_id,family_name\ns1,Doe\ns2,M\xfcller\ns3,Poe\n")
    batch = read_csv_context(path)
    assert [s.staff_id for s in batch.staff] == ["s1", "s3"]
    assert [(q.line, q.reason, q.raw) for q in batch.quarantined] == [
        (3, "text is not valid UTF-8", "s2,M\ufffdller")
    ]


def test_fhir_and_csv_agree_on_encounter_class_words():
    assert csv_context.ENCOUNTER_CLASS_WORDS is fhir_context.ENCOUNTER_CLASS_WORDS
