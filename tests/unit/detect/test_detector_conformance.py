"""One conformance suite for every detector (after river's ``checks``)."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest

from custodes.detect.models.evidence import EvidenceScorer
from custodes.detect.models.ranker import SupervisedRanker


def _detectors():
    return [EvidenceScorer(), SupervisedRanker(n_estimators=30)]


@pytest.fixture(scope="module")
def training(scored_hospital):
    features, _ = scored_hospital.engine.features(scored_hospital.events.head(20_000))
    labels = features.join(scored_hospital.labels, on="event_id", how="left")["label"].to_numpy()
    return features, labels


@pytest.mark.parametrize("detector", _detectors(), ids=lambda d: type(d).__name__)
class TestDetectorContract:
    def test_fit_returns_self_and_learns_underscored_state(self, detector, training):
        features, labels = training
        fresh = detector.clone()
        assert fresh.fit(features, labels) is fresh
        learned = [name for name in vars(fresh) if name.endswith("_")]
        assert learned and all(getattr(fresh, name) is not None for name in learned)

    def test_decision_function_gives_one_finite_score_per_row(self, detector, training):
        features, labels = training
        scores = detector.clone().fit(features, labels).decision_function(features)
        assert scores.shape == (features.height,)
        assert np.isfinite(scores).all()

    def test_higher_scores_mean_misuse(self, detector, training):
        features, labels = training
        scores = detector.clone().fit(features, labels).decision_function(features)
        assert scores[labels == 1].mean() > scores[labels == 0].mean()

    def test_score_one_equals_decision_function(self, detector, training):
        features, labels = training
        fitted = detector.clone().fit(features, labels)
        rows = features.head(25)
        batch = fitted.decision_function(rows)
        for i, row in enumerate(rows.iter_rows(named=True)):
            assert fitted.score_one(row) == pytest.approx(batch[i], rel=1e-9, abs=1e-9)

    def test_learn_one_keeps_scores_defined(self, detector, training):
        features, labels = training
        fitted = detector.clone().fit(features, labels)
        row = features.row(0, named=True)
        fitted.learn_one(row, int(labels[0]))
        assert np.isfinite(fitted.score_one(row))

    def test_clone_forgets_what_was_learned(self, detector, training):
        features, labels = training
        fitted = detector.clone().fit(features, labels)
        with pytest.raises(RuntimeError):
            fitted.clone().decision_function(features.head(3))

    def test_pickle_keeps_the_scores(self, detector, training):
        features, labels = training
        fitted = detector.clone().fit(features, labels)
        again = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_allclose(
            again.decision_function(features), fitted.decision_function(features), rtol=1e-12
        )

    def test_never_reads_names_or_free_text(self, detector):
        forbidden = {
            "family_name",
            "given_names",
            "address_line",
            "user_surname",
            "patient_surname",
        }
        assert not forbidden & set(detector.inputs)


def test_ranker_refuses_one_class(training):
    features, _ = training
    with pytest.raises(ValueError, match="both kinds"):
        SupervisedRanker().fit(features, np.zeros(features.height))


def test_evidence_weights_follow_surprise(training):
    features, _ = training
    scorer = EvidenceScorer().fit(features)
    # Flags about who the patient is weigh by their rate among everyone.
    assert scorer.overall_rates_["vip"] == pytest.approx(features["vip"].mean())
    # Habits weigh per user: a name search by the user who searches most is less
    # surprising than one by the user who searches least.
    rates = scorer.user_rates_.sort("rate_name_search")
    rare, frequent = rates["user_id"][0], rates["user_id"][-1]
    row = features.filter(pl.col("name_search")).head(1)
    evidence = {
        user: scorer.evidence(row.with_columns(pl.lit(user).alias("user_id")))["name_search"][0]
        for user in (rare, frequent)
    }
    assert evidence[rare] > evidence[frequent]
