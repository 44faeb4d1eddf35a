"""The streaming pipeline on the in-process bus: micro-batches in, the batch's alerts,
one growing case per story, and the playbooks' response out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import polars as pl
import pytest

from custodes.core.cases import SuppressionScope
from custodes.core.clock import FixedClock
from custodes.core.errors import InputFormatError
from custodes.correlate.alerts import budget_threshold
from custodes.correlate.service import CaseBook
from custodes.detect.engine import DetectionEngine
from custodes.detect.signins import UnusualSignIns
from custodes.detect.stream import (
    StreamDetector,
    access_messages,
    signin_events_from,
    signin_messages,
)
from custodes.ingest.service import read_event_files
from custodes.respond.actions import ActionRegistry, account_actions
from custodes.respond.executor import ResponseExecutor
from custodes.respond.playbooks import load_playbooks
from custodes.simulate.attacks import compromised_credentials_attack
from custodes.storage.bus import InProcessBus
from custodes.storage.memory_cases import MemoryCaseStore
from custodes.storage.sql_responses import MemoryResponseRuns
from custodes.streaming import CaseResponder, StreamPipeline


class Accounts:
    """An in-memory AccountControl that knows every user."""

    def __init__(self) -> None:
        self.locked: set[str] = set()
        self.revoked: list[str] = []
        self.stepped_up: set[str] = set()
        self.reenrol: set[str] = set()

    def lock(self, name: str) -> None:
        self.locked.add(name)

    def unlock(self, name: str) -> None:
        self.locked.discard(name)

    def revoke_sessions(self, name: str) -> int:
        self.revoked.append(name)
        return 1

    def revoke_tokens(self, name: str) -> int:
        return 0

    def require_step_up(self, name: str) -> None:
        self.stepped_up.add(name)

    def withdraw_step_up(self, name: str) -> None:
        self.stepped_up.discard(name)

    def require_mfa_reenrolment(self, name: str) -> int:
        self.reenrol.add(name)
        return 1


@pytest.fixture(scope="module")
def streamed(scored_hospital):
    """Three days learnt; the fourth, with an attack in it, streamed."""
    events = scored_hospital.events
    cut = events["time"].min().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3)
    history, day = events.filter(pl.col("time") < cut), events.filter(pl.col("time") >= cut)
    signins = read_event_files([scored_hospital.folder / "signins.ndjson"]).signins
    engine = DetectionEngine(scored_hospital.context, seed=0).fit(history)
    history_scores, state = engine.score(history)
    threshold = budget_threshold(history_scores["score"], 10)
    user = history.group_by("user_id").len().sort("len", "user_id", descending=True)["user_id"][0]
    attack = compromised_credentials_attack(
        user, scored_hospital.context.patients["patient_id"].to_list(),
        cut + timedelta(hours=2, minutes=5), seed=7,
    )
    stream = pl.concat([day.filter(pl.col("time") < cut + timedelta(hours=6)), attack.accesses])
    stream = stream.sort("time", "event_id")
    return engine, state, threshold, signins, cut, attack, stream


def pipeline(streamed, accounts, store, runs):
    engine, state, threshold, signins, cut, *_ = streamed
    clock = FixedClock(cut + timedelta(hours=6))
    detector = StreamDetector(engine, threshold=threshold, clock=clock)
    detector.state_ = state
    judge = UnusualSignIns().fit(signins.filter(pl.col("time") < cut))
    responder = CaseResponder(
        CaseBook(store, clock),
        ResponseExecutor(ActionRegistry.of(*account_actions(accounts)), runs, clock),
        load_playbooks(),
    )
    return StreamPipeline(detector, judge, threshold, responder), clock


async def _stream(pipe, clock, attack, stream, later_signins, batch):
    async with InProcessBus() as bus:
        for message in signin_messages(pl.concat([attack.signins, later_signins])):
            await bus.publish("custodes.events.signin.p03", message)
        for message in access_messages(stream):
            await bus.publish("custodes.access.ward-a", message)
        total = stream.height + attack.signins.height + later_signins.height
        return await pipe.run(bus, max_events=total, batch=batch, timeout=0.01, clock=clock)


def test_a_streamed_attack_grows_one_case_and_locks_the_account(streamed) -> None:
    *_, signins, cut, attack, stream = streamed
    later = signins.filter((pl.col("time") >= cut) & (pl.col("time") < cut + timedelta(hours=6)))
    accounts, store, runs = Accounts(), MemoryCaseStore(), MemoryResponseRuns()
    pipe, clock = pipeline(streamed, accounts, store, runs)
    totals = asyncio.run(_stream(pipe, clock, attack, stream, later, batch=300))

    assert totals.accesses == stream.height and totals.batches > 5
    user = attack.user_id
    cases = CaseBook(store, clock).queue(include_closed=True, limit=1000)
    mine = [c for c in cases if c.user_id == user]
    # One case tells the whole story, though its alerts came in many micro-batches.
    (case,) = mine
    assert case.kind == "compromised_credentials_chain" and str(case.severity) == "critical"
    attack_ids = set(attack.accesses["event_id"]) | set(attack.signins["event_id"])
    alerts = store.alerts_of_cases([case.case_id])
    assert {a.event_id for a in alerts} <= attack_ids
    assert len(alerts) >= 10 and any(a.source == "signin" for a in alerts)
    assert "unusual sign-in" in " ".join(case.story) and "then export" in " ".join(case.story)
    assert accounts.locked == {user} and user in accounts.revoked
    assert user in accounts.reenrol and user in accounts.stepped_up
    assert {r.action for r in runs.runs(case.case_id)} >= {"lock_account", "revoke_sessions"}


def test_the_stream_builds_the_cases_the_batch_builds(streamed) -> None:
    """Micro-batches of 300 or one batch of everything: the same cases, the same alerts."""
    *_, signins, cut, attack, stream = streamed
    later = signins.filter((pl.col("time") >= cut) & (pl.col("time") < cut + timedelta(hours=6)))
    outcomes = []
    for batch in (300, 1_000_000):
        store = MemoryCaseStore()
        pipe, clock = pipeline(streamed, Accounts(), store, MemoryResponseRuns())
        asyncio.run(_stream(pipe, clock, attack, stream, later, batch=batch))
        cases = CaseBook(store, clock).queue(include_closed=True, limit=1000)
        outcomes.append({
            c.case_id: (c.kind, str(c.severity), frozenset(c.alert_ids)) for c in cases
        })
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) >= 2


def test_a_sign_in_message_that_is_not_one_is_refused() -> None:
    with pytest.raises(InputFormatError, match="message 2 of the batch is not a sign-in event"):
        signin_events_from([b'{"time": "2026-03-02T10:00:00+00:00", "user_id": "u", '
                            b'"kind": "login"}', b'{"user_id": "u"}'])


def test_a_run_stops_at_its_event_bound_exactly(streamed) -> None:
    *_, signins, cut, attack, stream = streamed
    later = signins.filter(pl.col("time") >= cut).head(50)
    pipe, clock = pipeline(streamed, Accounts(), MemoryCaseStore(), MemoryResponseRuns())

    async def bounded():
        async with InProcessBus() as bus:
            for message in signin_messages(later):
                await bus.publish("custodes.events.signin.p01", message)
            for message in access_messages(stream.head(500)):
                await bus.publish("custodes.access.ward-a", message)
            return await pipe.run(bus, max_events=120, batch=100, timeout=0.01, clock=clock)

    totals = asyncio.run(bounded())
    assert (totals.signins, totals.accesses) == (later.height, 120 - later.height)
    assert totals.batches == 2


def test_a_rule_suppression_silences_that_rule_in_the_stream(streamed) -> None:
    *_, signins, cut, attack, stream = streamed
    later = signins.filter((pl.col("time") >= cut) & (pl.col("time") < cut + timedelta(hours=6)))

    def streamed_alerts(store):
        pipe, clock = pipeline(streamed, Accounts(), store, MemoryResponseRuns())
        asyncio.run(_stream(pipe, clock, attack, stream, later, batch=1_000_000))
        cases = CaseBook(store, clock).queue(include_closed=True, limit=1000)
        return clock, store.alerts_of_cases([c.case_id for c in cases])

    _, plain = streamed_alerts(MemoryCaseStore())
    ruled = pl.Series([rule for a in plain for rule in a.rules], dtype=pl.String)
    assert not ruled.is_empty(), "the streamed day matches some Sigma rule"
    rule = ruled.value_counts(sort=True)[ruled.name][0]
    store = MemoryCaseStore()
    book = CaseBook(store, FixedClock(cut))
    book.suppress(SuppressionScope.RULE, rule, "reviewed: a known workflow", "officer",
                  timedelta(days=7))
    _, kept = streamed_alerts(store)
    assert kept and not any(rule in a.rules for a in kept)
    # Kept with the suppression's id (known, so never alerted again), in no case.
    silenced = [a.alert_id for a in plain if rule in a.rules]
    assert store.known_alert_ids(silenced) == set(silenced)
    assert not set(silenced) & {a.alert_id for a in kept}
