"""The hospital simulator: same seed, same bytes; what it writes ingests cleanly.

One small hospital is simulated twice for the whole module (about a second each); the
property tests of the generated month are in ``test_simulate_properties.py``.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from custodes.core.events import AccessEvent, Action, Outcome, SignInEvent, SignInKind
from custodes.ingest.csv_access import CsvAccessLogReader
from custodes.ingest.csv_context import read_csv_context
from custodes.ingest.fhir_audit import (
    FhirAuditEventReader,
    audit_event_resource,
    signin_audit_event_resource,
)
from custodes.ingest.fhir_context import read_fhir_context
from custodes.simulate import ScenarioRates, config_for, parse_rate_overrides, simulate
from custodes.simulate.writers import AUTHENTICATION_SYSTEM

SEED = 11
FILES = (
    "events.ndjson",
    "events.csv",
    "signins.ndjson",
    "labels.csv",
    "summary.json",
    "context/organizations.ndjson",
    "context/practitioners.ndjson",
    "context/patients.ndjson",
    "context/encounters.ndjson",
    "context/staff.csv",
    "context/patients.csv",
    "context/encounters.csv",
    "context/related_persons.csv",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    simulate(config_for("small", SEED), first)
    simulate(config_for("small", SEED), second)
    return first, second


@pytest.fixture(scope="module")
def out(runs) -> Path:
    return runs[0]


@pytest.fixture(scope="module")
def summary(out) -> dict:
    return orjson.loads((out / "summary.json").read_bytes())


@pytest.fixture(scope="module")
def context(out) -> dict[str, set[str]]:
    practitioners = read_fhir_context(out / "context" / "practitioners.ndjson")
    patients = read_fhir_context(out / "context" / "patients.ndjson")
    return {
        "staff": {s.staff_id for s in practitioners.staff},
        "patients": {p.patient_id for p in patients.patients},
    }


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_same_seed_writes_the_same_bytes(runs, name):
    first, second = runs
    assert (first / name).read_bytes() == (second / name).read_bytes()


def test_another_seed_writes_another_hospital(out, tmp_path):
    simulate(config_for("small", SEED + 1, days=2), tmp_path)
    assert (tmp_path / "context" / "patients.csv").read_bytes() != (
        out / "context" / "patients.csv"
    ).read_bytes()


# --- ingest -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reader", "kind"),
    [
        ("events.ndjson", FhirAuditEventReader, "access"),
        ("events.csv", CsvAccessLogReader, "access"),
        ("signins.ndjson", FhirAuditEventReader, "signins"),
    ],
)
def test_event_files_ingest_with_nothing_quarantined(out, context, summary, name, reader, kind):
    frames, quarantined = [], 0
    for chunk in reader().read(out / name):
        quarantined += len(chunk.quarantined)
        frames.append(getattr(chunk, kind))
    events = pl.concat(frames)
    assert quarantined == 0
    assert set(events["user_id"].unique()) <= context["staff"]
    if kind == "access":
        assert events.height == summary["counts"]["access_events"]
        assert set(events["patient_id"].unique()) <= context["patients"]
    else:
        assert events.height == summary["counts"]["signin_events"]


@pytest.mark.parametrize(
    "name",
    [
        "organizations.ndjson",
        "practitioners.ndjson",
        "patients.ndjson",
        "encounters.ndjson",
        "staff.csv",
        "patients.csv",
        "encounters.csv",
        "related_persons.csv",
    ],
)
def test_context_files_ingest_with_nothing_quarantined(out, context, name):
    path = out / "context" / name
    batch = read_fhir_context(path) if path.suffix == ".ndjson" else read_csv_context(path)
    assert batch.quarantined == []
    assert batch.accepted > 0
    for encounter in batch.encounters:
        assert encounter.patient_id in context["patients"]
        assert set(encounter.care_team) <= context["staff"]
    for relation in batch.related_persons:
        assert relation.patient_id in context["patients"]
        assert relation.staff_id is None or relation.staff_id in context["staff"]


def test_fhir_and_csv_contexts_say_the_same(out):
    folder = out / "context"
    fhir = read_fhir_context(folder / "encounters.ndjson").encounters
    table = read_csv_context(folder / "encounters.csv").encounters
    assert [(e.encounter_id, e.patient_id, e.department, e.start, e.end, e.attending_id,
             set(e.care_team), e.encounter_class) for e in fhir] == [
        (e.encounter_id, e.patient_id, e.department, e.start, e.end, e.attending_id,
         set(e.care_team), e.encounter_class) for e in table
    ]  # fmt: skip
    fhir_staff = read_fhir_context(folder / "practitioners.ndjson").staff
    table_staff = read_csv_context(folder / "staff.csv").staff
    assert [(s.staff_id, s.role, s.department, s.family_name) for s in fhir_staff] == [
        (s.staff_id, s.role, s.department, s.family_name) for s in table_staff
    ]


# --- one source of truth for the line shapes --------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_event_lines_are_what_audit_event_resource_writes(out):
    """Each vectorised line is, byte for byte, ``audit_event_resource`` of the same values
    (read from the CSV row of the same event), but for ``recorded`` to the millisecond."""
    lines = (out / "events.ndjson").read_bytes().splitlines()
    rows = _rows(out / "events.csv")
    assert len(lines) == len(rows)
    sample = list(range(0, len(rows), max(1, len(rows) // 400))) + [len(rows) - 1]
    for n in sample:
        row = rows[n]
        event = AccessEvent(
            event_id=row["event_id"],
            time=datetime.fromisoformat(row["time"]),
            user_id=row["user_id"],
            patient_id=row["patient_id"],
            action=Action(row["action"]),
            resource_type=row["resource_type"],
            resource_id=row["resource_id"],
            application=row["application"],
            workstation=row["workstation"],
            source_ip=row["source_ip"],
            outcome=Outcome(row["outcome"]),
            purpose_of_use=row["purpose_of_use"],
        )
        expected = audit_event_resource(event)
        written = orjson.loads(lines[n])
        assert datetime.fromisoformat(written["recorded"]) == event.time
        assert written["recorded"].endswith("Z") and len(written["recorded"]) == 24
        expected["recorded"] = written["recorded"]
        assert orjson.dumps(expected) == lines[n]


def test_signin_lines_are_what_signin_audit_event_resource_writes(out):
    """Sign-ins are ``signin_audit_event_resource`` plus the device agent and the
    authentication method coding; the reader takes the device."""
    lines = (out / "signins.ndjson").read_bytes().splitlines()
    read = FhirAuditEventReader().parse_lines(lines, "signins.ndjson").signins
    assert read.height == len(lines)
    for n in range(0, len(lines), max(1, len(lines) // 200)):
        row = read.row(n, named=True)
        written = orjson.loads(lines[n])
        device = written["agent"][1]["who"]["identifier"]["value"]
        assert row["device"] == device
        event = SignInEvent(
            event_id=row["event_id"],
            time=row["time"],
            user_id=row["user_id"],
            kind=SignInKind(row["kind"]),
            outcome=Outcome(row["outcome"]),
            source_ip=row["source_ip"],
            application=row["application"],
        )
        expected = signin_audit_event_resource(event)
        expected["recorded"] = written["recorded"]
        assert datetime.fromisoformat(written["recorded"]) == event.time
        methods = [c for c in written["subtype"] if c["system"] == AUTHENTICATION_SYSTEM]
        assert len(methods) == (1 if row["kind"] == "login" else 0)
        written["subtype"] = [c for c in written["subtype"] if c["system"] != AUTHENTICATION_SYSTEM]
        written["agent"] = written["agent"][:1]
        assert written == expected


# --- the files ---------------------------------------------------------------------------------


def test_events_are_in_time_order_with_stable_ids(out):
    rows = _rows(out / "events.csv")
    times = [r["time"] for r in rows]
    assert times == sorted(times)
    assert [r["event_id"] for r in rows] == [f"sim-{SEED}-{n}" for n in range(len(rows))]


def test_every_event_has_a_label(out, summary):
    events = _rows(out / "events.csv")
    labels = _rows(out / "labels.csv")
    assert [r["event_id"] for r in labels] == [r["event_id"] for r in events]
    scenarios = set(ScenarioRates.names())
    misuse = 0
    for row in labels:
        if row["label"] == "1":
            misuse += 1
            assert row["scenario"] in scenarios and row["case_id"].startswith("case-")
        else:
            assert (row["label"], row["scenario"], row["case_id"]) == ("0", "", "")
    assert misuse == summary["counts"]["misuse_events"] > 0


def test_summary_adds_up(summary):
    counts = summary["counts"]
    assert counts["legitimate_events"] + counts["misuse_events"] == counts["access_events"]
    assert sum(r["events"] for r in summary["by_role"].values()) == counts["access_events"]
    assert sum(d["events"] for d in summary["by_department"].values()) == counts["access_events"]
    by_scenario = summary["misuse"]["by_scenario"]
    assert sum(s["events"] for s in by_scenario.values()) == counts["misuse_events"]
    by_reason = summary["legitimate"]["by_reason"]
    assert sum(r["events"] for r in by_reason.values()) == counts["legitimate_events"]
    assert (
        sum(r["without_care_team_link"] for r in by_reason.values())
        == summary["legitimate"]["without_care_team_link"]
    )
    assert sum(summary["events_by_hour"]) == counts["access_events"]


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "staff", "patients", "days"),
    [
        ("small", 150, 2_000, 7),
        ("hospital", 2_000, 50_000, 30),
        ("health-system", 5_000, 125_000, 30),
    ],
)
def test_presets(preset, staff, patients, days):
    config = config_for(preset, seed=3)
    assert (config.staff, config.patients, config.days, config.seed) == (staff, patients, days, 3)


def test_command_line_overrides():
    config = config_for(
        "hospital", 5, staff=300, patients=4_000, days=3, rates={"bulk_export": 2.5}
    )
    assert (config.staff, config.patients, config.days, config.rates.bulk_export) == (
        300,
        4_000,
        3,
        2.5,
    )
    assert config.rates.self_access == ScenarioRates().self_access


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "clinic"}, "unknown preset"),
        ({"rates": {"snooping": 1.0}}, "unknown scenario"),
        ({"rates": {"bulk_export": -1.0}}, "cannot be negative"),
        ({"staff": 10}, "at least 60 staff"),
        ({"days": 0}, "days must be"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    arguments = {"preset": "small", "seed": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        config_for(**arguments)


def test_rate_options_parse():
    assert parse_rate_overrides(["bulk_export=0.5", " slow_and_low = 1 "]) == {
        "bulk_export": 0.5,
        "slow_and_low": 1.0,
    }
    for bad in ("bulk_export", "=1", "bulk_export=lots"):
        with pytest.raises(ValueError, match="SCENARIO=NUMBER"):
            parse_rate_overrides([bad])
