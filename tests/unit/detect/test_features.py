"""The features of hand-built accesses: one row of the table per documented meaning."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from custodes.context import HospitalContext
from custodes.core.entities import Address, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.events import ACCESS_EVENT_SCHEMA
from custodes.detect.features import FeaturePipeline, FeatureState

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOME = Address(line="10 Elm St", postal_code="01234")

CONTEXT = HospitalContext.from_entities(
    staff=[
        StaffMember("s1", family_name="Smith", role="nurse", department="icu", address=HOME),
        StaffMember(
            "s2",
            family_name="Jones",
            role="nurse",
            department="icu",
            termination_date=date(2026, 3, 1),
        ),
        StaffMember("s3", family_name="Brown", role="clerk", department="billing"),
    ],
    patients=[
        Patient("p-self", family_name="Smith", address=HOME, staff_id="s1"),
        Patient("p-family", family_name="Smith", address=HOME),
        Patient(
            "p-neighbour", family_name="Lee", address=Address(line="14 Elm St", postal_code="01234")
        ),
        Patient("p-far", family_name="Lee", address=Address(line="90 Elm St", postal_code="01234")),
        Patient("p-vip", family_name="Star", vip=True, sensitive_categories=("hiv",)),
        Patient("p-coworker", family_name="Jones", staff_id="s2"),
        Patient("p-care", family_name="Kay"),
        Patient("p-dept", family_name="May"),
        Patient("p-soon", family_name="Ray"),
        Patient("p-dead", family_name="Doe", deceased=True, deceased_at=NOW - timedelta(days=3)),
        Patient("p-related", family_name="Quinn"),
    ],
    encounters=[
        Encounter(
            "e1", "p-care", NOW - timedelta(days=1), department="medicine", care_team=("s1",)
        ),
        Encounter(
            "e2", "p-dept", NOW - timedelta(days=2), department="icu", end=NOW - timedelta(days=1)
        ),
        Encounter("e3", "p-soon", NOW + timedelta(days=5), department="icu"),
        Encounter(
            "e4",
            "p-vip",
            NOW - timedelta(days=40),
            department="icu",
            end=NOW - timedelta(days=35),
            care_team=("s3",),
        ),
    ],
    related_persons=[RelatedPerson("r1", "p-related", relationship="SIS", staff_id="s1")],
)


def _events(rows: list[dict]) -> pl.DataFrame:
    defaults = {
        "action": "read",
        "resource_type": "Patient",
        "application": "EHR",
        "workstation": "ws1",
        "source_ip": "10.0.0.1",
        "outcome": "success",
        "purpose_of_use": "TREAT",
        "break_the_glass": False,
        "session_id": "x",
    }
    full = [
        {**defaults, "event_id": f"e{i:03d}", "time": NOW + timedelta(seconds=i), **row}
        for i, row in enumerate(rows)
    ]
    return pl.DataFrame(
        [{name: row.get(name) for name in ACCESS_EVENT_SCHEMA} for row in full],
        schema=ACCESS_EVENT_SCHEMA,
    )


def _features(rows: list[dict]) -> pl.DataFrame:
    events = _events(rows)
    pipeline = FeaturePipeline(CONTEXT).fit(events)
    features, _ = pipeline.transform(events)
    return features


CASES = [
    ("s1", "p-self", {"self_access": True, "coworker": False, "same_surname": True}),
    ("s1", "p-family", {"same_surname": True, "same_household": True, "self_access": False}),
    ("s1", "p-neighbour", {"neighbour": True, "same_household": False}),
    ("s1", "p-far", {"neighbour": False}),
    (
        "s1",
        "p-vip",
        {
            "vip": True,
            "sensitive": True,
            "department_treated_before": True,
            "on_care_team": False,
            "department_encounter": False,
        },
    ),
    ("s1", "p-coworker", {"coworker": True}),
    ("s1", "p-care", {"on_care_team": True, "department_encounter": False, "in_hospital": True}),
    ("s1", "p-dept", {"department_encounter": True, "on_care_team": False}),
    ("s1", "p-soon", {"upcoming_appointment": True, "department_encounter": False}),
    ("s1", "p-dead", {"deceased": True}),
    ("s1", "p-related", {"relative_of_user": True, "same_surname": False}),
    (
        "s2",
        "p-care",
        {"user_terminated": True, "colleague_on_care_team": True, "on_care_team": False},
    ),
    ("s3", "p-care", {"user_terminated": False, "colleague_on_care_team": False}),
]


@pytest.mark.parametrize(
    ("user", "patient", "expected"), CASES, ids=[f"{u}-{p}" for u, p, _ in CASES]
)
def test_feature_table(user, patient, expected):
    row = _features([{"user_id": user, "patient_id": patient}]).row(0, named=True)
    assert {name: row[name] for name in expected} == expected


def test_history_features_count_only_earlier_events():
    rows = [
        {"user_id": "s1", "patient_id": "p-care"},
        {"user_id": "s1", "patient_id": "p-care", "action": "create"},
        {"user_id": "s1", "patient_id": "p-care"},
        {"user_id": "s1", "patient_id": "p-dept", "workstation": "ws9", "action": "search"},
    ]
    features = _features(rows)
    assert features["first_access"].to_list() == [True, False, False, True]
    assert features["charted_before"].to_list() == [False, False, True, False]
    assert features["user_day_patients"].to_list() == [1, 1, 1, 2]
    assert features["user_hour_accesses"].to_list() == [1, 2, 3, 4]
    assert features["name_search"].to_list() == [False, False, False, True]
    # Too little history for "new workstation" to mean anything.
    assert not features["new_workstation"].any()


def test_chunks_give_the_same_features_as_one_batch():
    rows = [{"user_id": u, "patient_id": p} for u, p, _ in CASES] * 3
    events = _events(rows)
    pipeline = FeaturePipeline(CONTEXT).fit(events)
    whole, _ = pipeline.transform(events)
    state, parts = FeatureState.empty(), []
    for start in range(0, events.height, 4):
        part, state = pipeline.transform(events.slice(start, 4), state)
        parts.append(part)
    columns = [
        "event_id",
        "first_access",
        "user_day_patients",
        "user_hour_accesses",
        "explained",
        "explanation",
        "charted_before",
        "new_workstation",
    ]
    assert pl.concat(parts).select(columns).equals(whole.select(columns))


def test_unknown_user_and_patient_have_no_flags():
    row = _features([{"user_id": "ghost", "patient_id": "nobody"}]).row(0, named=True)
    assert row["user_role"] == "unknown"
    flags = ("on_care_team", "same_surname", "vip", "self_access", "user_terminated", "explained")
    assert not any(row[name] for name in flags)


def test_a_user_whose_events_arrive_late_keeps_todays_counts():
    # s1's accesses come in two chunks; between them s3's clock has run days ahead
    # (another source, or a lagging one). s1's distinct patients of the day still add up.
    pipeline = FeaturePipeline(CONTEXT).fit(_events([{"user_id": "s1", "patient_id": "p-far"}]))
    first = _events([{"user_id": "s1", "patient_id": p} for p in ("p-care", "p-dept", "p-soon")])
    ahead = _events([{"user_id": "s3", "patient_id": "p-care"}]).with_columns(
        time=pl.col("time") + timedelta(days=5), event_id=pl.lit("ahead")
    )
    second = _events([{"user_id": "s1", "patient_id": p} for p in ("p-vip", "p-dead")]).with_columns(
        time=pl.col("time") + timedelta(minutes=5), event_id=pl.col("event_id") + "-later"
    )
    state = FeatureState.empty()
    for chunk in (first, ahead):
        _, state = pipeline.transform(chunk, state)
    late, _ = pipeline.transform(second, state)
    assert late["user_day_patients"].to_list() == [4, 5]


def test_a_place_first_used_today_stays_new_for_the_rest_of_the_day_across_chunks():
    usual = [{"user_id": "s1", "patient_id": "p-care"}] * 25  # enough history to mean anything
    laptop = {"user_id": "s1", "patient_id": "p-dept", "workstation": "LAPTOP-9"}
    events = _events([*usual, laptop, laptop, {"user_id": "s1", "patient_id": "p-care"}, laptop])
    tomorrow = _events([laptop]).with_columns(
        time=pl.col("time") + timedelta(days=1), event_id=pl.lit("tomorrow")
    )
    pipeline = FeaturePipeline(CONTEXT).fit(events.head(25))
    whole, _ = pipeline.transform(events)
    state, parts = FeatureState.empty(), []
    for start in range(0, events.height, 26):
        part, state = pipeline.transform(events.slice(start, 26), state)
        parts.append(part)
    next_day, _ = pipeline.transform(tomorrow, state)
    for features in (whole, pl.concat(parts)):
        assert features["new_workstation"].tail(4).to_list() == [True, False, False, False]
        assert features["new_place_today"].tail(4).to_list() == [True, True, False, True]
        assert not features["new_place_today"].head(25).any()
    assert next_day["new_place_today"].to_list() == [False]
