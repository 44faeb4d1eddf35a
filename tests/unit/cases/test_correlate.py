"""Correlation rules, table by table: which alert groups make which case."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from tests.unit.cases.alerts_table import alert, compromised_credentials, frame

from custodes.core.cases import Severity
from custodes.core.errors import InputFormatError
from custodes.correlate.cases import correlate
from custodes.correlate.rules import CorrelationRule, load_rules

RULES = load_rules()


def _reads(n: int, *, user: str = "u1", distinct: bool = True, start: float = 0) -> list[tuple]:
    return [
        alert(f"{user}-{start}-{i}", start + i, user=user, patient=f"p{i if distinct else 0}")
        for i in range(n)
    ]


SIGNIN = alert("s", 0, patient=None, action="login", source="signin")
EXPORT = alert("x", 30, action="export", score=92)
EARLY_EXPORT = alert("x0", 0.5, action="export", score=92)


@pytest.mark.parametrize(
    ("name", "rows", "kind", "severity"),
    [
        ("lone alert", _reads(1), "single_alert", Severity.LOW),
        ("lone high alert", [alert("h", 0, score=95)], "single_alert", Severity.HIGH),
        ("two alerts", _reads(2), "alert_group", Severity.LOW),
        ("event_count: three alerts, one patient", _reads(3, distinct=False), "repeated_alerts",
         Severity.MEDIUM),
        ("value_count: ten patients", _reads(10), "mass_access", Severity.HIGH),
        ("value_count: nine patients is not enough", _reads(9), "repeated_alerts",
         Severity.MEDIUM),
        ("temporal_ordered: sign-in, access, export", [SIGNIN, *_reads(2, start=1), EXPORT],
         "compromised_credentials_chain", Severity.CRITICAL),
        ("temporal: export before the accesses is not ordered",
         [SIGNIN, EARLY_EXPORT, *_reads(2, start=1)], "sign_in_then_export", Severity.HIGH),
        ("no sign-in: no chain; the export's score sets the severity",
         [*_reads(2, start=1), EXPORT], "repeated_alerts", Severity.HIGH),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_correlation_rules(name: str, rows: list, kind: str, severity: Severity) -> None:
    result = correlate(frame(rows), RULES)
    assert [c.kind for c in result.cases] == [kind]
    assert result.cases[0].severity is severity
    assert result.assignment.height == len(rows)


def test_alerts_group_by_user_and_the_gap_between_them() -> None:
    rows = [*_reads(2, user="u1"), *_reads(2, user="u2"), *_reads(1, user="u1", start=120)]
    result = correlate(frame(rows), RULES)
    assert sorted((c.user_id, c.alert_count) for c in result.cases) == [
        ("u1", 1), ("u1", 2), ("u2", 2)
    ]
    assert result.assignment["alert_id"].n_unique() == len(rows)


def test_a_story_across_the_clock_hour_is_one_case() -> None:
    # 10:50 to 11:20 (T0 is 10:00): no clock bucket splits it.
    rows = [alert(f"h{i}", 50 + 10 * i, patient=f"p{i}") for i in range(4)]
    (case,) = correlate(frame(rows), RULES).cases
    assert case.alert_count == 4 and case.kind == "repeated_alerts"
    assert case.first_time.minute == 50 and case.last_time.hour == 11


def test_a_case_grows_while_alerts_keep_within_the_gap() -> None:
    # Every 50 minutes for four hours: one case, but never three within one hour,
    # so the event_count rule (3 in 1 h) does not fire: its window slides, it is not
    # the whole case.
    rows = [alert(f"g{i}", 50 * i, patient="p1") for i in range(5)]
    (case,) = correlate(frame(rows), RULES).cases
    assert case.alert_count == 5 and case.kind == "alert_group"
    assert "2026-03-02 10:00 to 13:20" in case.story[0]


def test_a_chain_counts_from_its_latest_sign_in() -> None:
    # A sign-in at 10:00, reads every 40 minutes, another sign-in at 12:10 and an
    # export at 12:30: the chain from the second sign-in is within the hour.
    rows = [alert("s1", 0, patient=None, action="login", source="signin")]
    rows += [alert(f"r{i}", 40 * (i + 1), patient=f"p{i}") for i in range(3)]
    rows += [
        alert("s2", 130, patient=None, action="login", source="signin"),
        alert("r9", 135, patient="p9"),
        alert("x", 150, action="export", score=92),
    ]
    (case,) = correlate(frame(rows), RULES).cases
    assert case.kind == "compromised_credentials_chain"


def test_an_ordered_chain_slower_than_its_timespan_does_not_fire() -> None:
    rows = [
        alert("s1", 0, patient=None, action="login", source="signin"),
        *[alert(f"r{i}", 30 * (i + 1), patient=f"p{i}") for i in range(3)],
        alert("x", 100, action="export", score=70),
    ]
    (case,) = correlate(frame(rows), RULES).cases
    assert case.kind == "repeated_alerts"  # sign-in to export took 100 minutes


def test_many_users_on_one_record_make_a_patient_case() -> None:
    rows = [alert(f"v{i}", 60 * i, user=f"u{i}", patient="vip") for i in range(4)]
    rows.append(alert("other", 5, user="u9", patient="p2"))
    result = correlate(frame(rows), RULES)
    patient_cases = [c for c in result.cases if c.subject == "patient"]
    (case,) = patient_cases
    assert case.kind == "record_viewed_by_many" and case.patient_id == "vip"
    assert (case.user_count, case.alert_count, case.user_id) == (4, 4, "")
    assert case.case_id.startswith("p-") and case.tactics == ("TA0009 Collection",)
    assert "4 alert(s) on patient vip by 4 user(s)" in case.story[0]
    # Each alert keeps its user's case too.
    assert sum(c.subject == "user" for c in result.cases) == 5
    assert sorted(result.patient_assignment["alert_id"]) == sorted(case.alert_ids)


def test_two_users_on_one_record_are_no_patient_case() -> None:
    rows = [alert(f"v{i}", i, user=f"u{i}", patient="vip") for i in range(2)]
    assert all(c.subject == "user" for c in correlate(frame(rows), RULES).cases)


def test_users_on_one_record_days_apart_are_no_patient_case() -> None:
    rows = [alert(f"v{i}", 1440 * 2 * i, user=f"u{i}", patient="vip") for i in range(3)]
    assert all(c.subject == "user" for c in correlate(frame(rows), RULES).cases)


def test_a_case_keeps_the_id_of_the_stored_case_it_grew_from() -> None:
    stored = frame([alert("a", 0)]).with_columns(case_id=pl.lit("c-kept-u1"))
    newcomer = frame([alert("late", 30)])
    (case,) = correlate(pl.concat([stored, newcomer], how="diagonal"), RULES).cases
    assert case.case_id == "c-kept-u1" and case.alert_count == 2
    (alone,) = correlate(newcomer, RULES).cases
    assert alone.case_id != "c-kept-u1"


def test_a_newcomer_that_bridges_two_cases_merges_them_into_the_older() -> None:
    rows = pl.concat([
        frame([alert("a", 0)]).with_columns(case_id=pl.lit("c-old")),
        frame([alert("b", 100)]).with_columns(case_id=pl.lit("c-young")),
        frame([alert("c", 50)]).with_columns(case_id=pl.lit(None, pl.String)),
    ])
    result = correlate(rows, RULES)
    (case,) = result.cases
    assert case.case_id == "c-old" and case.alert_count == 3
    assert result.merged == {"c-young": "c-old"}


def test_the_case_table_and_the_case_records_agree() -> None:
    result = correlate(compromised_credentials(), RULES)
    (row,) = result.table.iter_rows(named=True)
    (case,) = result.cases
    assert row["case_id"] == case.case_id and row["story"] == list(case.story)
    assert row["severity"] == case.severity.value and row["alert_ids"] == list(case.alert_ids)


def test_the_ranker_probability_of_a_case_is_its_highest() -> None:
    rows = [alert("a", 0, probability=0.2), alert("b", 1, patient="p2", probability=0.7)]
    (case,) = correlate(frame(rows), RULES).cases
    assert case.probability == 0.7


def test_the_chain_tells_the_whole_story_with_its_tactics() -> None:
    (case,) = correlate(compromised_credentials(), RULES).cases
    assert case.kind == "compromised_credentials_chain"
    assert case.tactics == ("TA0001 Initial Access", "TA0009 Collection", "TA0010 Exfiltration")
    assert case.patient_count == 12 and case.alert_count == 14
    story = " ".join(case.story)
    assert "unusual sign-in at 10:00 then access at 10:01 (12 patient(s)) then export" in story


def test_a_chain_longer_than_its_timespan_does_not_fire() -> None:
    slow = CorrelationRule(
        name="slow", type="temporal_ordered", timespan=timedelta(minutes=10),
        severity=Severity.CRITICAL, stages=("unusual_signin", "access", "export"),
    )
    wide = CorrelationRule(
        name="wide", type="event_count", timespan=timedelta(hours=1), severity=Severity.LOW, gte=1
    )
    (case,) = correlate(compromised_credentials(), [slow, wide]).cases
    assert case.kind == "wide"


def test_repeat_offenders_get_a_higher_severity() -> None:
    plain = correlate(frame(_reads(3, distinct=False)), RULES).cases[0]
    repeat = correlate(frame(_reads(3, distinct=False)), RULES, prior_offences={"u1": 2}).cases[0]
    assert repeat.severity is plain.severity.raised()
    assert repeat.prior_offences == 2
    assert any("repeat offender" in line for line in repeat.story)


def test_the_same_alerts_make_the_same_case_ids() -> None:
    first = correlate(compromised_credentials(), RULES).cases
    again = correlate(compromised_credentials(), RULES).cases
    assert [c.case_id for c in first] == [c.case_id for c in again]


def test_a_closed_case_is_not_reopened_by_newcomers() -> None:
    (case,) = correlate(frame(_reads(1)), RULES).cases
    (follow_up,) = correlate(
        frame(_reads(1, start=5)), RULES, closed_case_ids=frozenset({case.case_id})
    ).cases
    assert follow_up.case_id != case.case_id


def test_no_alerts_no_cases() -> None:
    result = correlate(frame([]), RULES)
    assert result.cases == () and result.assignment.is_empty()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("name: a\ncorrelation: {type: sequence, timespan: 1h}", "is not one of"),
        ("name: a\ncorrelation: {type: value_count, timespan: 1h}", "needs a field"),
        ("name: a\ncorrelation: {type: temporal, rules: [export], timespan: 1h}", "two or more"),
        ("name: a\ncorrelation: {type: event_count, timespan: soon}", "not like 30s"),
        ("name: a\ncorrelation: {type: event_count, timespan: 1h, group-by: [department]}",
         "group-by must be"),
        ("title: no name", "malformed"),
    ],
)
def test_bad_rules_are_one_clear_error(tmp_path, document: str, message: str) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(document)
    with pytest.raises(InputFormatError, match=message):
        load_rules(path)


def test_a_user_alerting_all_day_and_night_makes_a_case_a_day() -> None:
    # Every 50 minutes for 30 hours: never a silence of an hour, yet not one endless case.
    rows = [alert(f"d{i}", 50 * i, patient=f"p{i}") for i in range(37)]
    cases = sorted(correlate(frame(rows), RULES).cases, key=lambda c: c.first_time)
    assert [c.alert_count for c in cases] == [29, 8]  # 0:00-23:20, then from 24:10
    assert (cases[1].first_time - cases[0].first_time).total_seconds() == 29 * 50 * 60
    assert all(c.last_time - c.first_time < timedelta(days=1) for c in cases)


def test_a_stored_id_goes_to_one_case_only_when_a_late_alert_moves_the_split() -> None:
    # A stored case of 25 hours' alerts (all carrying its id), then a late alert an hour
    # before its first: the day-long pieces now split elsewhere, and the id stays unique.
    stored = frame([alert(f"s{i}", 50 * i, patient=f"p{i}") for i in range(31)]).with_columns(
        case_id=pl.lit("c-stored-u1")
    )
    late = frame([alert("early", -55, patient="px")])
    cases = correlate(pl.concat([stored, late], how="diagonal"), RULES).cases
    ids = [c.case_id for c in cases]
    assert len(ids) == len(set(ids)) == 2 and "c-stored-u1" in ids
    assert sum(c.alert_count for c in cases) == 32
