"""Correlation rules, table by table: which alert groups make which case."""

from __future__ import annotations

from datetime import timedelta

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


def test_alerts_group_by_user_and_window() -> None:
    rows = [*_reads(2, user="u1"), *_reads(2, user="u2"), *_reads(1, user="u1", start=120)]
    result = correlate(frame(rows), RULES)
    assert sorted((c.user_id, c.alert_count) for c in result.cases) == [
        ("u1", 1), ("u1", 2), ("u2", 2)
    ]
    assert result.assignment["alert_id"].n_unique() == len(rows)


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
        ("name: a\ncorrelation: {type: event_count, timespan: 1h, group-by: [patient_id]}",
         "only group-by user_id"),
        ("title: no name", "malformed"),
    ],
)
def test_bad_rules_are_one_clear_error(tmp_path, document: str, message: str) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(document)
    with pytest.raises(InputFormatError, match=message):
        load_rules(path)
