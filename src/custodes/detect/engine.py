"""The detection engine: features, rules and models, scoring every access with reasons.

``DetectionEngine.fit`` learns from a training log; ``score(events, state)`` scores a
time-ordered chunk and returns the state the next chunk continues from. The batch
runner calls ``score`` once on a whole log, the stream runner once per micro-batch;
a test holds the two to the same scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from custodes.context import HospitalContext
from custodes.detect.features import FeaturePipeline, FeatureState
from custodes.detect.models.evidence import TERM_FIELDS, EvidenceScorer, fill_values
from custodes.detect.models.ranker import SupervisedRanker
from custodes.detect.rules import RuleSet


@dataclass(frozen=True)
class RepeatDiscount:
    """How a user's later suspicious accesses of the day step back in the queue.

    Parameters
    ----------
    floor: a raw score at or above this counts as a suspicious access.
    decay: each earlier suspicious access by the same user that day multiplies the
        score by this...
    min_factor: ...down to this share of the raw score.
    step_up: an access whose raw score is at least this much above every earlier one
        of its user that day keeps it: not a repeat of what was queued but a step up
        (a sweep that has grown, an export after it). A step, not any new high, so
        one incident whose score creeps up does not fill the budget either.
    """

    floor: float = 60.0
    decay: float = 0.8
    min_factor: float = 0.7
    step_up: float = 8.0


#: Accesses scored at once by ``score_log``: bounds the memory of a long log's features.
CHUNK_EVENTS = 1_000_000

#: Scores below this carry no reasons.
QUIET_SCORE = 25.0

#: ``rule_hits`` names the Sigma rules each access matched (rule-scoped suppressions
#: read it); ``probability`` is the ranker's probability of misuse (null without one).
SCORE_COLUMNS = (
    "event_id", "score", "explained", "explanation", "reasons", "rule_hits", "probability"
)


@dataclass(frozen=True)
class EngineState:
    """Everything the engine remembers between chunks."""

    features: FeatureState
    suspicious_today: pl.DataFrame

    @classmethod
    def empty(cls) -> EngineState:
        return cls(
            FeatureState.empty(),
            pl.DataFrame(
                schema={
                    "user_id": pl.String,
                    "day": pl.Date,
                    "export": pl.Boolean,
                    "suspicious": pl.Int64,
                    "highest": pl.Float64,
                }
            ),
        )


@dataclass
class DetectionEngine:
    """Scores accesses from 0 to 100 with plain reasons, explained or not.

    Parameters
    ----------
    context: the hospital's context.
    rules: Sigma rules evaluated on every access (the shipped pack by default).
    seed: for every random start, so a refit gives the same model.
    repeat_discount: how far a user's later suspicious accesses of a day step back.
    """

    context: HospitalContext
    rules: RuleSet | None = None
    seed: int = 0
    repeat_discount: RepeatDiscount = field(default_factory=RepeatDiscount)
    pipeline_: FeaturePipeline | None = field(default=None, init=False, repr=False)
    scorer_: EvidenceScorer | None = field(default=None, init=False, repr=False)
    ranker_: SupervisedRanker | None = field(default=None, init=False, repr=False)
    # Reasons per (rules matched, top terms): the stream meets the same pairs again.
    _phrase_cache: dict[tuple[str, int], str] = field(default_factory=dict, init=False, repr=False)

    def fit(self, events: pl.DataFrame, labels: pl.DataFrame | None = None) -> DetectionEngine:
        """Learn baselines, explanations and evidence weights from a training log.

        ``labels`` (``event_id``, ``label``: analyst verdicts) train the supervised ranker
        when they hold both classes; without them the engine is fully unsupervised.
        """
        if self.rules is None:
            self.rules = RuleSet.default()
        self.pipeline_ = FeaturePipeline(self.context, seed=self.seed)
        features = self.pipeline_.fit_transform(events)
        self.scorer_ = EvidenceScorer().fit(features)
        self._phrase_cache = {}
        self.ranker_ = None
        if labels is not None:
            labelled = features.join(labels.select("event_id", "label"), on="event_id")
            if labelled["label"].n_unique() == 2:
                self.ranker_ = SupervisedRanker(seed=self.seed).fit(
                    self._with_rules(labelled), labelled["label"].to_numpy()
                )
        return self

    def features(
        self, events: pl.DataFrame, state: EngineState | None = None, *, keep_state: bool = True
    ) -> tuple[pl.DataFrame, FeatureState]:
        """The feature frame (with rule hits) of a chunk."""
        if self.pipeline_ is None:
            raise RuntimeError("fit the detection engine first")
        state = state or EngineState.empty()
        features, feature_state = self.pipeline_.transform(
            events, state.features, keep_state=keep_state
        )
        return self._with_rules(features), feature_state

    def score(
        self, events: pl.DataFrame, state: EngineState | None = None, *, keep_state: bool = True
    ) -> tuple[pl.DataFrame, EngineState]:
        """Scores of a time-ordered chunk (``SCORE_COLUMNS``), and the state after it.

        A batch run that needs no state afterwards passes ``keep_state=False``.
        """
        state = state or EngineState.empty()
        features, feature_state = self.features(events, state, keep_state=keep_state)
        scored = self.score_features(features)
        discounted, suspicious = discount_repeats(
            features.select("user_id", "time", "export").with_columns(raw=scored["score"]),
            state.suspicious_today,
            self.repeat_discount,
        )
        result = features.select("event_id", "explained", "explanation", "rule_hits").with_columns(
            score=discounted, reasons=scored["reasons"], probability=scored["probability"]
        )
        return result.select(SCORE_COLUMNS), EngineState(feature_state, suspicious)

    def score_log(self, events: pl.DataFrame, *, chunk_events: int = CHUNK_EVENTS) -> pl.DataFrame:
        """Scores of a whole log (``SCORE_COLUMNS``, in time order), a chunk at a time.

        The state carries from chunk to chunk, so the scores are those of one call to
        ``score`` on the whole log (the stream test holds them equal); only one chunk's
        feature frame is in memory at a time.
        """
        ordered = events.sort("time", "event_id", maintain_order=True)
        state = EngineState.empty()
        parts = []
        for start in range(0, ordered.height, chunk_events):
            last = start + chunk_events >= ordered.height
            scores, state = self.score(
                ordered.slice(start, chunk_events), state, keep_state=not last
            )
            parts.append(scores)
        return pl.concat(parts) if parts else self.score(ordered, keep_state=False)[0]

    def score_features(self, features: pl.DataFrame) -> pl.DataFrame:
        """``score`` (raw, 0..100), ``reasons`` and the ranker's ``probability`` (null
        without a ranker) of every row of a feature frame.

        Rule hits raise the score as ``100 - (100 - s) * exp(-weight / 100)`` (a high
        rule, weight 50, closes 39% of the distance to 100) and name themselves first;
        the evidence then adds what the rules did not already say.
        """
        assert self.scorer_ is not None and self.rules is not None
        matrix = self.scorer_.evidence_matrix(features)
        evidence = self.scorer_.score_matrix(matrix)
        rule_weight = features["rule_weight"].to_numpy()
        raw = 100.0 - (100.0 - evidence) * np.exp(-rule_weight / 100.0)
        probability = pl.repeat(None, len(raw), dtype=pl.Float64, eager=True)
        if self.ranker_ is not None:
            # With verdicts, the ranker's probability of misuse sets the order and the
            # unsupervised score breaks its ties and keeps the reasons.
            p = self.ranker_.decision_function(features)
            raw = 0.8 * 100.0 * p + 0.2 * raw
            probability = pl.Series(p, dtype=pl.Float64)
        score = np.clip(raw, 0.0, 100.0)
        # Below QUIET_SCORE nothing is worth a privacy officer's reading: no reasons, so
        # the explained ones read "explained: ..." and nothing more. Most accesses are
        # quiet, so reasons are worked out for the others only.
        loud = np.flatnonzero(score >= QUIET_SCORE)
        reasons = pl.repeat("", len(score), dtype=pl.String, eager=True)
        if len(loud):
            keys = self.scorer_.reason_keys(matrix[loud])
            reasons = reasons.scatter(loud, self._reasons(features[loud], keys))
        return pl.DataFrame({"score": score, "reasons": reasons, "probability": probability})

    def _reasons(self, features: pl.DataFrame, keys: np.ndarray) -> pl.Series:
        """Rule phrases first, then the evidence's that no matched rule already covers.

        Built once per distinct (rules matched, top terms) pair and joined back.
        """
        assert self.scorer_ is not None and self.rules is not None
        pairs = pl.DataFrame({"hits": features["rule_hits"].list.join(","), "key": keys})
        terms = self.scorer_.terms()
        lookup_rows = []
        for hits, key in pairs.unique().iter_rows():
            known = self._phrase_cache.get((hits, key))
            if known is not None:
                lookup_rows.append((hits, key, known))
                continue
            matched = [self.rules[rule_id] for rule_id in hits.split(",") if rule_id]
            matched.sort(key=lambda rule: (-rule.weight, rule.id))
            covered = set().union(*(rule.fields for rule in matched)) if matched else set()
            phrases = list(dict.fromkeys(rule.reason for rule in matched))
            for index in self.scorer_.reason_terms(key):
                name, _, phrase = terms[index]
                if covered & {name, *TERM_FIELDS.get(name, ())}:
                    continue
                phrases.append(phrase)
            text = "; ".join(phrases)
            self._phrase_cache[(hits, key)] = text
            lookup_rows.append((hits, key, text))
        lookup = pl.DataFrame(
            lookup_rows,
            schema={"hits": pl.String, "key": pl.Int64, "reasons": pl.String},
            orient="row",
        )
        reasons = pairs.join(lookup, on=["hits", "key"], how="left", maintain_order="left")[
            "reasons"
        ]
        return fill_values(reasons, features)

    def _with_rules(self, features: pl.DataFrame) -> pl.DataFrame:
        assert self.rules is not None
        return annotate_rules(self.rules, features)


def annotate_rules(rules: RuleSet, features: pl.DataFrame) -> pl.DataFrame:
    """Add ``rule_hits`` (ids), ``rule_weight`` (sum of weights) and ``rule_reasons``.

    The reasons name the matched rules' phrases, heaviest first. Weight and reasons are
    worked out once per distinct combination of hits (there are few) and joined back.
    """
    if not len(rules):
        return features.with_columns(
            rule_hits=pl.lit([], dtype=pl.List(pl.String)),
            rule_weight=pl.lit(0.0),
            rule_reasons=pl.lit(""),
        )
    hits = rules.hits(features.select(sorted(rules.fields)))
    combos = hits.unique().to_list()
    weights, reasons = [], []
    for combo in combos:
        matched = sorted((rules[rule_id] for rule_id in combo), key=lambda r: (-r.weight, r.id))
        weights.append(float(sum(rule.weight for rule in matched)))
        reasons.append("; ".join(dict.fromkeys(rule.reason for rule in matched)))
    table = pl.DataFrame(
        {"rule_hits": combos, "rule_weight": weights, "rule_reasons": reasons},
        schema={
            "rule_hits": pl.List(pl.String),
            "rule_weight": pl.Float64,
            "rule_reasons": pl.String,
        },
    )
    annotated = hits.to_frame("rule_hits").join(
        table, on="rule_hits", how="left", maintain_order="left", nulls_equal=True
    )
    return pl.concat([features, annotated], how="horizontal")


def discount_repeats(
    frame: pl.DataFrame, earlier: pl.DataFrame, discount: RepeatDiscount
) -> tuple[pl.Series, pl.DataFrame]:
    """Lower the scores of a user's later suspicious accesses on the same day.

    One incident (a bulk export, a browsing spree) must not fill the whole alert
    budget: the first suspicious accesses keep their score, later ones lose up to
    ``1 - min_factor`` of it, so other incidents reach the queue. An access scored
    ``step_up`` above all of the user's earlier ones that day is not discounted:
    were it, a sweep whose score climbs as it grows would be held under the alert
    threshold from the moment its first accesses crossed the floor. Causal, so the
    stream agrees with the batch.
    """
    # Exports are counted apart from the other accesses: taking records out after a
    # sweep is the next step of the story, not a repeat of the reads.
    by_day = ("user_id", "day", "export")
    frame = frame.with_columns(
        day=pl.col("time").dt.date(), high=(pl.col("raw") >= discount.floor).cast(pl.Int64)
    ).join(earlier, on=list(by_day), how="left", maintain_order="left")
    frame = frame.with_columns(
        prior=pl.col("suspicious").fill_null(0)
        + pl.col("high").cum_sum().over(by_day)
        - pl.col("high"),
        prior_highest=pl.max_horizontal(
            pl.col("highest"), pl.col("raw").cum_max().shift(1).over(by_day)
        ),
    )
    factor = (
        pl.when(
            pl.col("prior_highest").is_null()
            | (pl.col("raw") >= pl.col("prior_highest") + discount.step_up)
        )
        .then(pl.lit(1.0))
        .otherwise(
            pl.max_horizontal(
                pl.lit(discount.decay) ** pl.col("prior"), pl.lit(discount.min_factor)
            )
        )
    )
    scores = frame.select((pl.col("raw") * factor).alias("score"))["score"]
    latest = frame.group_by(by_day).agg(
        suspicious=pl.col("suspicious").first().fill_null(0) + pl.col("high").sum(),
        highest=pl.max_horizontal(pl.col("highest").first(), pl.col("raw").max()),
    )
    merged = pl.concat(
        [earlier.join(latest.select(by_day), on=list(by_day), how="anti"), latest]
    )
    # Forgotten from each user's own latest day, so a user whose events arrive late
    # keeps their count while others' clocks run ahead.
    merged = merged.filter(pl.col("day") >= pl.col("day").max().over("user_id") - timedelta(days=1))
    return scores, merged
