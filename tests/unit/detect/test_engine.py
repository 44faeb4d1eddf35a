"""The engine on a seeded simulated hospital: quality floors, reasons, batch = stream."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn.metrics import roc_auc_score

from custodes.detect.batch import detect_log
from custodes.detect.engine import EngineState, RepeatDiscount, discount_repeats
from custodes.detect.stream import StreamDetector, access_events_from, access_messages


def _joined(scored_hospital) -> pl.DataFrame:
    return scored_hospital.scores.join(scored_hospital.labels, on="event_id")


def test_every_event_gets_one_score(scored_hospital):
    scores = scored_hospital.scores
    assert scores.height == scored_hospital.events.height
    assert scores["event_id"].n_unique() == scores.height
    assert scores["score"].is_between(0, 100).all()


def test_auc_floor_without_labels(scored_hospital):
    joined = _joined(scored_hospital)
    assert roc_auc_score(joined["label"], joined["score"]) >= 0.95


def test_most_legitimate_accesses_are_explained(scored_hospital):
    legitimate = _joined(scored_hospital).filter(pl.col("label") == 0)
    assert legitimate["explained"].mean() >= 0.95


def test_misuse_is_mostly_unexplained_or_flagged(scored_hospital):
    joined = _joined(scored_hospital)
    misuse = joined.filter(pl.col("label") == 1)
    legitimate = joined.filter(pl.col("label") == 0)
    assert misuse["score"].median() > legitimate["score"].quantile(0.95)


def test_every_alert_has_a_reason_and_every_explanation_a_name(scored_hospital):
    scores = scored_hospital.scores
    alerts = scores.filter(pl.col("score") >= 60)
    assert alerts.height > 0
    assert (alerts["reasons"].str.len_chars() > 0).all()
    explained = scores.filter(pl.col("explained"))
    assert explained["explanation"].is_not_null().all()
    assert scores.filter(~pl.col("explained"))["explanation"].is_null().all()


def test_a_snooped_relative_is_named_in_the_reasons(scored_hospital):
    joined = _joined(scored_hospital)
    family = joined.filter(pl.col("scenario") == "family_snooping")
    assert not family.is_empty(), "the seeded hospital plants family snooping"
    best = family.sort("score", descending=True).row(0, named=True)
    assert best["score"] >= 60
    assert any(word in best["reasons"] for word in ("relative", "surname", "address"))



def test_the_rules_each_access_matched_travel_with_its_score(scored_hospital):
    scores = scored_hospital.scores
    hits = scores["rule_hits"].explode().drop_nulls()
    assert not hits.is_empty()
    rules = scored_hospital.engine.rules
    assert all(rules[rule_id].id == rule_id for rule_id in hits.unique().to_list())
    # A rule's hit raises the score: the accesses with one outscore those without.
    with_hit = scores.filter(pl.col("rule_hits").list.len() > 0)["score"].median()
    without = scores.filter(pl.col("rule_hits").list.len() == 0)["score"].median()
    assert with_hit > without
    assert scores["probability"].is_null().all()  # no ranker without verdicts


@pytest.mark.parametrize("chunk", [1, 997, 5_000])
def test_stream_replays_batch_scores(scored_hospital, chunk):
    events = scored_hospital.events.head(12_000)
    engine = scored_hospital.engine
    batch, _ = engine.score(events)
    parts, state = [], EngineState.empty()
    # One-event chunks are slow; a prefix is enough to show the state carries over.
    stop = 600 if chunk == 1 else events.height
    for start in range(0, stop, chunk):
        scored, state = engine.score(events.slice(start, min(chunk, stop - start)), state)
        parts.append(scored)
    assert_frame_equal(pl.concat(parts), batch.head(stop))


@pytest.mark.parametrize("chunk_events", [4_999, 1_000_000])
def test_scoring_a_log_in_chunks_gives_the_scores_of_one_pass(scored_hospital, chunk_events):
    events = scored_hospital.events.head(15_000)
    whole, _ = scored_hospital.engine.score(events, keep_state=False)
    chunked = scored_hospital.engine.score_log(events, chunk_events=chunk_events)
    assert_frame_equal(chunked, whole)


def test_messages_round_trip_to_the_same_scores(scored_hospital):
    events = scored_hospital.events.head(3_000)
    detector = StreamDetector(scored_hospital.engine)
    decoded = access_events_from(access_messages(events))
    assert_frame_equal(decoded, events.sort("time", "event_id", maintain_order=True))
    batch, _ = scored_hospital.engine.score(events)
    assert_frame_equal(detector.score_batch(decoded), batch)


def test_train_until_scores_only_the_later_events(scored_hospital):
    events = scored_hospital.events
    cut = events["time"].sort()[events.height // 2]
    result = detect_log(events, scored_hospital.context, train_until=cut)
    assert result.trained_on == events.filter(pl.col("time") < cut).height
    assert result.scores.height == events.height - result.trained_on


def test_verdicts_train_the_ranker_and_lift_precision(scored_hospital):
    events, labels = scored_hospital.events, scored_hospital.labels
    cut = events["time"].sort()[events.height // 2]
    train = events.filter(pl.col("time") < cut)
    verdicts = labels.filter(pl.col("event_id").is_in(train["event_id"].implode()))
    supervised = detect_log(events, scored_hospital.context, train_until=cut, verdicts=verdicts)
    unsupervised = detect_log(events, scored_hospital.context, train_until=cut)
    assert supervised.engine.ranker_ is not None

    def auc(result):
        joined = result.scores.join(labels, on="event_id")
        return roc_auc_score(joined["label"], joined["score"])

    assert auc(supervised) >= auc(unsupervised) - 0.01
    probability = supervised.scores["probability"]
    assert probability.is_not_null().all() and probability.is_between(0, 1).all()


def test_fitted_engine_pickles_to_the_same_scores(scored_hospital):
    events = scored_hospital.events.head(2_000)
    clone = pickle.loads(pickle.dumps(scored_hospital.engine))
    assert_frame_equal(clone.score(events)[0], scored_hospital.engine.score(events)[0])


def test_refit_with_the_same_seed_gives_the_same_scores(scored_hospital):
    from custodes.detect.engine import DetectionEngine

    events = scored_hospital.events
    again = DetectionEngine(scored_hospital.context, seed=0).fit(events)
    np.testing.assert_allclose(
        again.score(events)[0]["score"].to_numpy(), scored_hospital.scores["score"].to_numpy()
    )


def test_the_repeat_discount_spares_a_step_up_and_a_first_export_but_not_a_repeat() -> None:
    start = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    raw = [70.0, 70.0, 70.0, 80.0, 75.0, 82.0, 90.0, 90.0, 70.0, 70.0]
    export = [False] * 8 + [True, True]
    frame = pl.DataFrame(
        {
            "user_id": ["u1"] * len(raw),
            "time": [start + timedelta(minutes=i) for i in range(len(raw))],
            "export": export,
            "raw": raw,
        },
        schema={
            "user_id": pl.String,
            "time": pl.Datetime("us", "UTC"),
            "export": pl.Boolean,
            "raw": pl.Float64,
        },
    )
    discount = RepeatDiscount(step_up=8.0)
    whole, _ = discount_repeats(frame, EngineState.empty().suspicious_today, discount)
    # In two chunks, the state carries the day's highest score across.
    first, earlier = discount_repeats(frame.head(4), EngineState.empty().suspicious_today, discount)
    second, _ = discount_repeats(frame.tail(6), earlier, discount)
    expected = [
        70.0,  # the day's first
        56.0,  # a repeat: 0.8
        49.0,  # 0.64, held at 0.7
        80.0,  # 10 above the highest so far: a step up
        52.5,
        57.4,  # above the highest, but by less than a step
        90.0,  # 10 above 80
        63.0,
        70.0,  # the day's first export is not a repeat of the reads
        56.0,
    ]
    assert [round(x, 4) for x in whole] == expected
    assert [round(x, 4) for x in pl.concat([first, second])] == expected
