"""The case book over every case store: the in-memory one and SQLite (PostgreSQL in
tests/integration/test_case_storage.py runs the same checks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.unit.cases.alerts_table import T0, alert, compromised_credentials, frame

from custodes.core.cases import CaseStatus, Severity, SuppressionScope, Verdict
from custodes.core.clock import FixedClock
from custodes.core.errors import CustodesError
from custodes.correlate.alerts import alerts_from_scores, budget_threshold, deduplicate
from custodes.correlate.service import CaseBook, CaseClosedError, CaseNotFoundError
from custodes.storage.database import create_engine, upgrade
from custodes.storage.memory_cases import MemoryCaseStore
from custodes.storage.sql_cases import SqlCaseStore


def sqlite_store(tmp_path: Path) -> SqlCaseStore:
    engine = create_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    upgrade(engine)
    return SqlCaseStore(engine)


STORES: dict[str, Callable[[Path], object]] = {
    "memory": lambda _: MemoryCaseStore(),
    "sqlite": sqlite_store,
}


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    return STORES[request.param](tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0 + timedelta(hours=2))


def check_case_book(store, clock: FixedClock) -> None:
    """The behaviour every store must give the case book; shared with PostgreSQL."""
    book = CaseBook(store, clock)
    report = book.record(compromised_credentials())
    assert (report.new_alerts, report.new_cases) == (14, 1)
    (case,) = book.queue()
    assert case.kind == "compromised_credentials_chain" and case.severity is Severity.CRITICAL

    again = book.record(compromised_credentials())  # the same events: deduplicated
    assert (again.new_alerts, again.duplicates, again.new_cases) == (0, 14, 0)

    later = frame([alert("u1-late", 45, patient="p99", score=88)])
    joined = book.record(later)  # same user, same window: joins the open case
    assert (joined.new_cases, joined.cases_touched) == (0, 1)
    case, alerts = book.show(case.case_id)
    assert case.alert_count == 15 and len(alerts) == 15 and case.patient_count == 13

    book.acknowledge(case.case_id, "officer")
    closed = book.close(case.case_id, Verdict.CONFIRMED_MISUSE, "officer", note="confirmed")
    assert closed.status is CaseStatus.CLOSED and closed.closed_by == "officer"
    assert book.queue() == [] and len(book.queue(include_closed=True)) == 1
    with pytest.raises(CaseClosedError):
        book.close(case.case_id, Verdict.FALSE_POSITIVE, "officer")
    with pytest.raises(CaseNotFoundError):
        book.show("c-missing")

    labels = book.verdict_labels()
    assert labels.height == 15 and labels["label"].to_list() == [1] * 15

    # Newcomers in the closed case's window open a follow-up, one severity up: repeat offender.
    follow = book.record(frame([alert("u1-after", 50, score=70), alert("u1-a2", 51, score=70)]))
    assert follow.new_cases == 1
    (follow_up,) = book.queue()
    assert follow_up.case_id != case.case_id and follow_up.prior_offences == 1
    assert follow_up.severity is Severity.MEDIUM  # low from the score, raised once

    # Suppressions: scoped, reasoned, expiring.
    suppression = book.suppress(SuppressionScope.USER, "u7", "covering ward 3", "officer",
                                timedelta(hours=1))
    muted = book.record(frame([alert("u7-1", 5, user="u7")]))
    assert (muted.suppressed, muted.new_cases) == (1, 0)
    clock.advance(hours=2)
    unmuted = book.record(frame([alert("u7-2", 6, user="u7")]))
    assert (unmuted.suppressed, unmuted.new_cases) == (0, 1)
    assert store.suppressions()[0].suppression_id == suppression.suppression_id
    assert store.revoke_suppression(suppression.suppression_id, clock.now())
    assert not store.revoke_suppression(suppression.suppression_id, clock.now())


def test_case_book(store, clock) -> None:
    check_case_book(store, clock)


@pytest.mark.parametrize(
    ("scope", "value", "suppressed"),
    [
        (SuppressionScope.USER, "u1", 2),
        (SuppressionScope.PATIENT, "p1", 1),
        (SuppressionScope.DEPARTMENT, "icu", 1),
        (SuppressionScope.RULE, "self_access", 1),
        (SuppressionScope.USER, "nobody", 0),
    ],
)
def test_suppressions_by_scope(scope, value, suppressed, clock) -> None:
    book = CaseBook(MemoryCaseStore(), clock)
    book.suppress(scope, value, "reviewed", "officer", timedelta(days=1))
    alerts = frame([alert("e1", 0, patient="p1"), alert("e2", 1, patient="p2", department="icu")])
    hits = pl.DataFrame({"event_id": ["e2"], "rule_id": ["self_access"]})
    assert book.record(alerts, rule_hits=hits).suppressed == suppressed


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_suppression_needs_a_reason(reason, clock) -> None:
    book = CaseBook(MemoryCaseStore(), clock)
    with pytest.raises(CustodesError, match="needs a reason"):
        book.suppress(SuppressionScope.USER, "u1", reason, "officer", timedelta(hours=1))


def test_a_suppression_must_expire_later(clock) -> None:
    book = CaseBook(MemoryCaseStore(), clock)
    with pytest.raises(CustodesError, match="expire after"):
        book.suppress(SuppressionScope.USER, "u1", "why", "officer", timedelta(0))


@pytest.mark.parametrize(
    ("budget", "expected_share"), [(10, 0.001), (50, 0.005), (100, 0.01)]
)
def test_the_budget_sets_how_many_accesses_alert(budget, expected_share) -> None:
    scores = np.random.default_rng(3).uniform(0, 100, 200_000)
    threshold = budget_threshold(scores, budget)
    assert (scores >= threshold).mean() == pytest.approx(expected_share, rel=0.05)


def test_the_budget_never_lets_quiet_scores_alert() -> None:
    assert budget_threshold(np.zeros(1000), 10_000) == 25.0
    assert budget_threshold(np.array([]), 10) == 100.0


def test_alerts_from_scores_join_the_events() -> None:
    scores = pl.DataFrame(
        {"event_id": ["e1", "e2", "e3"], "score": [90.0, 10.0, 70.0],
         "reasons": ["a", "", "b"], "rule_hits": [["family_snooping"], [], []],
         "probability": [0.9, 0.1, None]}
    )
    events = pl.DataFrame(
        {"event_id": ["e1", "e2", "e3"], "time": [T0] * 3, "user_id": ["u1", "u2", "u3"],
         "patient_id": ["p1", "p2", "p3"], "action": ["read", "read", "export"]}
    )
    departments = pl.DataFrame({"user_id": ["u1"], "department": ["icu"]})
    alerts = alerts_from_scores(scores, events, 60, departments=departments)
    assert alerts.sort("event_id")["event_id"].to_list() == ["e1", "e3"]
    assert alerts.sort("event_id")["department"].to_list() == ["icu", None]
    assert alerts.sort("event_id")["rules"].to_list() == [["family_snooping"], []]
    assert alerts.sort("event_id")["probability"].to_list() == [0.9, None]
    assert deduplicate(pl.concat([alerts, alerts])).height == 2
    assert deduplicate(alerts, [alerts["alert_id"][0]]).height == 1


def test_the_queue_can_put_the_least_sure_cases_first(store) -> None:
    book = CaseBook(store, FixedClock(T0 + timedelta(hours=1)))
    scores = {"sure": 97.0, "coin": 52.0, "doubt": 70.0, "low": 35.0}
    book.record(frame([
        alert(f"e-{user}", minute, user=user, patient=f"p-{user}", score=score)
        for minute, (user, score) in enumerate(scores.items())
    ]))
    by_severity = book.queue()
    assert by_severity[0].user_id == "sure"
    least_sure = book.queue(order="uncertain")
    assert [c.user_id for c in least_sure] == ["coin", "low", "doubt", "sure"]
    assert [c.uncertainty for c in least_sure] == [0.96, 0.7, 0.6, 0.06]
    assert [c.user_id for c in book.queue(order="uncertain", limit=2)] == ["coin", "low"]
    assert CaseBook.describe(least_sure[0])["uncertainty"] == 0.96
    with pytest.raises(CustodesError, match="order must be one of severity, uncertain"):
        book.queue(order="random")


def check_cases_grow_across_batches(store, clock: FixedClock) -> None:
    """Sessions, merges and patient cases built a batch at a time; shared with PostgreSQL."""
    book = CaseBook(store, clock)
    # 10:50, then 11:20 in a later batch: one case across the clock hour, same id.
    first = book.record(frame([alert("g1", 50, user="g", patient="gp1")]))
    later = book.record(frame([alert("g2", 80, user="g", patient="gp2")]))
    assert first.case_ids == later.case_ids and later.new_cases == 0
    (case,) = [c for c in book.queue() if c.user_id == "g"]
    assert case.alert_count == 2

    # Two cases two hours apart, then a late alert between them: merged into the older.
    book.record(frame([alert("m1", 0, user="m", patient="mp1")]))
    book.record(frame([alert("m2", 100, user="m", patient="mp2")]))
    assert len([c for c in book.queue() if c.user_id == "m"]) == 2
    bridged = book.record(frame([alert("m3", 50, user="m", patient="mp3")]))
    (merged,) = [c for c in book.queue() if c.user_id == "m"]
    assert merged.alert_count == 3 and bridged.case_ids == (merged.case_id,)
    assert merged.first_time == T0

    # Three users on one record in three batches, the first user's case already closed:
    # the patient case holds all three, and the closed case keeps its alert.
    book.record(frame([alert("v1", 0, user="va", patient="vip")]))
    (closed,) = [c for c in book.queue() if c.user_id == "va"]
    book.close(closed.case_id, Verdict.FALSE_POSITIVE, "officer")
    book.record(frame([alert("v2", 120, user="vb", patient="vip")]))
    assert not [c for c in book.queue() if c.subject == "patient"]
    third = book.record(frame([alert("v3", 300, user="vc", patient="vip")]))
    (patient_case,) = [c for c in book.queue() if c.subject == "patient"]
    assert patient_case.kind == "record_viewed_by_many" and patient_case.user_count == 3
    assert patient_case.case_id in third.case_ids
    _, its_alerts = book.show(patient_case.case_id)
    assert sorted(a.user_id for a in its_alerts) == ["va", "vb", "vc"]
    assert {a.case_id for a in its_alerts if a.user_id == "va"} == {closed.case_id}
    # A fourth user joins the open patient case, not a new one.
    book.record(frame([alert("v4", 320, user="vd", patient="vip")]))
    (grown,) = [c for c in book.queue() if c.subject == "patient"]
    assert grown.case_id == patient_case.case_id and grown.user_count == 4
    # Closing the patient case leaves the users' own cases and their labels alone.
    book.close(grown.case_id, Verdict.CONFIRMED_MISUSE, "officer")
    assert any(c.user_id == "vb" for c in book.queue())
    labels = book.verdict_labels()
    assert labels.filter(pl.col("event_id") == "v1")["label"].to_list() == [0]
    assert labels.filter(pl.col("event_id") == "v2").is_empty()


def test_cases_grow_across_batches(store, clock) -> None:
    check_cases_grow_across_batches(store, clock)


def test_rule_suppressions_read_the_rules_an_alert_carries(clock) -> None:
    book = CaseBook(MemoryCaseStore(), clock)
    book.suppress(SuppressionScope.RULE, "same_surname", "a family ward", "officer",
                  timedelta(days=1))
    alerts = frame([
        alert("e1", 0, rules=("same_surname", "after_hours")),
        alert("e2", 1, patient="p2", rules=("after_hours",)),
        alert("e3", 2, patient="p3"),
    ])
    report = book.record(alerts)
    assert (report.suppressed, report.new_alerts) == (1, 2)


def test_the_least_sure_order_reads_the_ranker_probability(store) -> None:
    book = CaseBook(store, FixedClock(T0 + timedelta(hours=1)))
    # Scores all high; the ranker is sure of "sure" and torn on "torn".
    book.record(frame([
        alert("e-sure", 0, user="sure", patient="ps", score=96, probability=0.99),
        alert("e-torn", 1, user="torn", patient="pt", score=95, probability=0.52),
        alert("e-none", 2, user="none", patient="pn", score=52),
    ]))
    least_sure = book.queue(order="uncertain")
    assert [c.user_id for c in least_sure] == ["torn", "none", "sure"]
    assert [c.uncertainty for c in least_sure] == [0.96, 0.96, 0.02]
    assert CaseBook.describe(least_sure[0])["probability"] == 0.52


def test_a_day_long_story_splits_alike_a_batch_at_a_time_or_all_at_once(store, clock) -> None:
    rows = [alert(f"d{i}", 50 * i, user="d", patient=f"dp{i}") for i in range(60)]
    at_once = CaseBook(MemoryCaseStore(), clock)
    at_once.record(frame(rows))
    one_by_one = CaseBook(store, clock)
    for row in rows:
        one_by_one.record(frame([row]))

    def shape(book):
        return sorted((c.case_id, c.alert_count) for c in book.queue(limit=100))

    assert shape(one_by_one) == shape(at_once) and len(shape(at_once)) == 3
