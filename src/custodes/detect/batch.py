"""The batch runner: fit on a log (or on its first part), score every access.

``detect_log`` is what ``custodes detect`` runs: with ``train_until`` the engine fits on
the events before that instant and scores the rest, as an audit of new logs against an
established baseline would; without it, it fits on the whole log and scores all of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from custodes.context import HospitalContext
from custodes.core.errors import InputFormatError
from custodes.detect.engine import DetectionEngine
from custodes.detect.models.explanation import reason_phrases
from custodes.detect.rules import RuleSet


@dataclass(frozen=True)
class BatchResult:
    """Scores and what it took to get them."""

    scores: pl.DataFrame
    engine: DetectionEngine
    trained_on: int
    fit_seconds: float
    score_seconds: float

    def summary(self, threshold: float) -> dict[str, float | int]:
        """Counts for a report: scored, explained share, accesses at or above ``threshold``."""
        scored = self.scores.height
        return {
            "trained_on": self.trained_on,
            "scored": scored,
            "explained_share": float(self.scores["explained"].mean() or 0.0) if scored else 0.0,
            "at_or_above_threshold": int((self.scores["score"] >= threshold).sum()),
            "fit_seconds": round(self.fit_seconds, 3),
            "score_seconds": round(self.score_seconds, 3),
        }


def detect_log(
    events: pl.DataFrame,
    context: HospitalContext,
    *,
    train_until: datetime | None = None,
    rules: RuleSet | None = None,
    verdicts: pl.DataFrame | None = None,
    seed: int = 0,
) -> BatchResult:
    """Fit and score; every event of the scored part gets a row."""
    if events.is_empty():
        raise InputFormatError("the access log holds no access events to score")
    train, test = events, events
    if train_until is not None:
        cut = pl.lit(train_until).cast(pl.Datetime("us", "UTC"))
        train = events.filter(pl.col("time") < cut)
        test = events.filter(pl.col("time") >= cut)
        if train.is_empty() or test.is_empty():
            first, last = events["time"].min(), events["time"].max()
            raise InputFormatError(
                f"--train-until {train_until.isoformat()} leaves nothing to "
                f"{'train on' if train.is_empty() else 'score'}; the log runs from {first} to {last}"
            )
    started = time.perf_counter()
    engine = DetectionEngine(context, rules=rules, seed=seed).fit(train, verdicts)
    fitted = time.perf_counter()
    scores = engine.score_log(test)
    done = time.perf_counter()
    return BatchResult(scores, engine, train.height, fitted - started, done - fitted)


def write_scores(scores: pl.DataFrame, path: Path) -> None:
    """``event_id,score,explained,reasons`` for every event, scores to two decimals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scores.select(
        "event_id",
        pl.col("score").round(2),
        pl.col("explained").cast(pl.String).str.to_lowercase(),
        pl.when(pl.col("explained"))
        .then(
            pl.concat_str(
                pl.lit("explained: "),
                pl.col("explanation").replace(reason_phrases()),
                pl.when(pl.col("reasons") != "").then(pl.lit("; ")).otherwise(pl.lit("")),
                pl.col("reasons"),
            )
        )
        .otherwise(pl.col("reasons"))
        .alias("reasons"),
    ).write_csv(path)
