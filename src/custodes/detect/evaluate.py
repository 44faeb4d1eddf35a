"""How well detector scores find labelled misuse, at the alert budgets a hospital can staff.

A privacy office reads a fixed number of alerts a day, so the headline numbers are taken
at *budgets*: B alerts per 10,000 accesses. At budget B the alerts are the
``k = floor(n * B / 10000)`` highest-scored events (at least one when there are events,
at most all of them). Ties in score are broken by ``event_id``, ascending: of two
events with the same score the one with the smaller ``event_id`` is alerted first, so
an evaluation replays exactly whatever the row order of the files. An *incident* is one
``case_id`` (one offender's misuse in one scenario); it is caught at a budget when at
least one of its events is alerted.

>>> labels = pl.DataFrame({
...     "event_id": ["a", "b", "c", "d"],
...     "label": [1, 1, 0, 0],
...     "scenario": ["vip_curiosity", "vip_curiosity", None, None],
...     "case_id": ["case-1", "case-1", None, None],
... })
>>> scores = pl.DataFrame({
...     "event_id": ["a", "b", "c", "d"],
...     "score": [90.0, 10.0, 40.0, 5.0],
...     "explained": [False, False, True, True],
... })
>>> result = evaluate(labels, scores, budgets=[2500])
>>> result.roc_auc, result.budgets[0].alerts, result.budgets[0].incident_recall
(0.75, 1, 1.0)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from custodes.core.errors import ConfigurationError, InputFormatError

LABEL_COLUMNS = ("event_id", "label", "scenario", "case_id")
SCORE_COLUMNS = ("event_id", "score", "explained", "reasons")
DEFAULT_BUDGETS: tuple[float, ...] = (1, 5, 10, 20, 50)
#: Misuse whose labels name no scenario is reported under this name.
UNSPECIFIED_SCENARIO = "unspecified"
TIE_BREAK = "score descending, then event_id ascending"


@dataclass(frozen=True)
class ScenarioAtBudget:
    """What one scenario's misuse looks like among the alerts of one budget."""

    scenario: str
    incidents: int
    incidents_caught: int
    incident_recall: float
    events: int
    events_alerted: int

    def as_json(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "incidents_caught": self.incidents_caught,
            "incident_recall": self.incident_recall,
            "events": self.events,
            "events_alerted": self.events_alerted,
        }


@dataclass(frozen=True)
class BudgetResult:
    """The alerts at one budget and what they catch.

    ``threshold`` is the lowest alerted score; ``ties_not_alerted`` counts events that
    share it but fell outside the budget by the ``event_id`` tie-break.
    Recalls are ``None`` when the labels hold no misuse.
    """

    per_10000: float
    alerts: int
    threshold: float
    precision: float
    misuse_alerted: int
    event_recall: float | None
    incidents_caught: int
    incident_recall: float | None
    ties_not_alerted: int
    scenarios: tuple[ScenarioAtBudget, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "per_10000": self.per_10000,
            "alerts": self.alerts,
            "threshold": self.threshold,
            "precision": self.precision,
            "misuse_alerted": self.misuse_alerted,
            "event_recall": self.event_recall,
            "incidents_caught": self.incidents_caught,
            "incident_recall": self.incident_recall,
            "ties_not_alerted": self.ties_not_alerted,
            "scenarios": {s.scenario: s.as_json() for s in self.scenarios},
        }


@dataclass(frozen=True)
class ScenarioSummary:
    """One scenario's misuse over the whole log, whatever the budget."""

    scenario: str
    events: int
    incidents: int
    mean_score: float

    def as_json(self) -> dict[str, Any]:
        return {"events": self.events, "incidents": self.incidents, "mean_score": self.mean_score}


@dataclass(frozen=True)
class Evaluation:
    """Scores against labels: ranking quality, the alert budgets, and explanations.

    ``roc_auc`` and ``average_precision`` are ``None`` when only one class is present,
    and the ``notes`` say why. The explained shares are ``None`` when the labels hold no
    event of that class.
    """

    events: int
    misuse_events: int
    incidents: int
    roc_auc: float | None
    average_precision: float | None
    legitimate_explained: float | None
    misuse_explained: float | None
    legitimate_mean_score: float | None
    budgets: tuple[BudgetResult, ...]
    scenarios: tuple[ScenarioSummary, ...]
    notes: tuple[str, ...]

    def at_budget(self, per_10000: float) -> BudgetResult | None:
        """The result at this budget, or ``None`` if it was not evaluated."""
        return next((b for b in self.budgets if b.per_10000 == per_10000), None)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict; budgets ascending, scenarios by name."""
        return {
            "events": self.events,
            "misuse_events": self.misuse_events,
            "incidents": self.incidents,
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
            "explained": {
                "legitimate": self.legitimate_explained,
                "misuse": self.misuse_explained,
            },
            "legitimate": {
                "events": self.events - self.misuse_events,
                "mean_score": self.legitimate_mean_score,
            },
            "scenarios": {s.scenario: s.as_json() for s in self.scenarios},
            "budgets": [b.as_json() for b in self.budgets],
            "tie_break": TIE_BREAK,
            "notes": list(self.notes),
        }


def evaluate(
    labels: pl.DataFrame, scores: pl.DataFrame, budgets: Sequence[float] = DEFAULT_BUDGETS
) -> Evaluation:
    """Evaluate scores (higher = more suspicious) against labels.

    ROC AUC and average precision are scikit-learn's ``roc_auc_score`` and
    ``average_precision_score``, computed from the one sort the budgets use.

    Parameters
    ----------
    labels
        ``event_id``, ``label`` (0/1), ``scenario``, ``case_id``; as ``read_labels`` gives.
    scores
        ``event_id``, ``score`` (0..100), ``explained``; as ``read_scores`` gives.
    budgets
        Alerts per 10,000 accesses; evaluated ascending, repeats dropped.

    Raises
    ------
    InputFormatError
        The two frames do not cover the same events exactly once each, or a column
        is missing or out of range.
    ConfigurationError
        A budget is not a positive number.
    """
    chosen = _check_budgets(budgets)
    labels = _labels_frame(labels)
    scores = _scores_frame(scores)
    _check_duplicates(labels, "labels")
    _check_duplicates(scores, "scores")
    joined = _join(labels, scores)
    # Scores were checked non-null, so a null score is a label without a score row; with
    # no duplicates either side, every score row not matched is an extra one.
    missing = joined["score"].null_count()
    if missing:
        first = joined.filter(pl.col("score").is_null())["event_id"][0]
        raise InputFormatError(
            f"{missing:,} labelled event(s) have no score (first: {first}); "
            "score every labelled event"
        )
    extra = scores.height - labels.height
    if extra:
        first = scores.join(labels, on="event_id", how="anti")["event_id"][0]
        raise InputFormatError(
            f"{extra:,} scored event(s) are not in the labels (first: {first}); "
            "score the same events the labels hold"
        )
    if joined.height == 0:
        raise InputFormatError("the labels hold no events to evaluate")
    return _evaluate_joined(joined, chosen)


def _join(labels: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """The labels with their scores; a label without a score gets a null score."""
    if labels.height == scores.height and (labels["event_id"] == scores["event_id"]).all():
        # A detector usually scores the events in the order of the log: no join needed.
        return labels.hstack(scores.drop("event_id"))
    return (
        labels.lazy()
        .join(scores.lazy(), on="event_id", how="left", maintain_order="left")
        .collect()
    )


@dataclass(frozen=True)
class _Cut:
    """Where one budget cuts the ranking: the alerted misuse and the threshold ties."""

    alerts: int
    alerted: pl.Expr
    threshold: float
    ties_not_alerted: int


def _cut(joined: pl.DataFrame, ascending: np.ndarray, misuse: pl.DataFrame, k: int) -> _Cut:
    """The k first events of the order (score descending, then event_id ascending).

    Every event scored above the threshold is alerted; of those scored exactly at it,
    the smallest event_ids fill the budget. Only that tie group is ever ordered by
    event_id, so the ranking costs one sort of the scores.
    """
    n = len(ascending)
    threshold = float(ascending[n - k])
    above = n - int(np.searchsorted(ascending, threshold, side="right"))
    at_or_above = n - int(np.searchsorted(ascending, threshold, side="left"))
    score = pl.col("score")
    alerted = score > threshold
    if at_or_above == k:
        alerted = score >= threshold
    elif misuse.filter(score == threshold).height:
        # The budget splits a tie that holds misuse: who is in depends on event_id.
        chosen = joined.filter(score == threshold)["event_id"].sort().head(k - above).implode()
        alerted = alerted | ((score == threshold) & pl.col("event_id").is_in(chosen))
    return _Cut(k, alerted, threshold, at_or_above - k)


def _evaluate_joined(joined: pl.DataFrame, budgets: list[float]) -> Evaluation:
    n = joined.height
    notes: list[str] = []
    misuse = joined.filter(pl.col("label") == 1).select(
        "event_id",
        "score",
        "case_id",
        pl.col("scenario").fill_null(UNSPECIFIED_SCENARIO),
    )
    _check_cases(misuse)
    n_misuse = misuse.height
    # One sort serves the ranking measures and every budget.
    ranked = joined.select("score", "label").sort("score", descending=True)
    descending = ranked["score"].to_numpy()
    roc_auc, average_precision = _ranking_quality(descending, ranked["label"].to_numpy(), notes)
    ascending = descending[::-1]
    cuts = [_cut(joined, ascending, misuse, _alerts(n, b)) for b in budgets]
    flags = [f"alerted_{i}" for i in range(len(cuts))]
    misuse = misuse.with_columns(cut.alerted.alias(f) for cut, f in zip(cuts, flags, strict=True))
    incidents = misuse.group_by("case_id").agg(
        pl.col("scenario").first(), *[pl.col(f).any() for f in flags]
    )
    n_incidents = incidents.height
    per_scenario = (
        misuse.group_by("scenario")
        .agg(
            pl.len().alias("events"),
            pl.col("case_id").n_unique().alias("incidents"),
            pl.col("score").mean().alias("mean_score"),
            *[pl.col(f).sum() for f in flags],
        )
        .join(
            incidents.group_by("scenario").agg(
                pl.col(f).sum().alias(f"caught_{i}") for i, f in enumerate(flags)
            ),
            on="scenario",
        )
        .sort("scenario")
    )
    alerted_totals = misuse.select(pl.col(flags).sum()).row(0)
    caught_totals = incidents.select(pl.col(flags).sum()).row(0)

    results = []
    for i, (budget, cut) in enumerate(zip(budgets, cuts, strict=True)):
        k = cut.alerts
        alerted, caught = int(alerted_totals[i]), int(caught_totals[i])
        if cut.ties_not_alerted:
            notes.append(
                f"at {budget:g} per 10,000, {cut.ties_not_alerted:,} event(s) share the "
                f"threshold score {cut.threshold:g} with alerted events but are not alerted "
                f"({TIE_BREAK})"
            )
        scenarios = tuple(
            ScenarioAtBudget(
                scenario=row["scenario"],
                incidents=row["incidents"],
                incidents_caught=row[f"caught_{i}"],
                incident_recall=row[f"caught_{i}"] / row["incidents"],
                events=row["events"],
                events_alerted=row[f"alerted_{i}"],
            )
            for row in per_scenario.iter_rows(named=True)
        )
        results.append(
            BudgetResult(
                per_10000=budget,
                alerts=k,
                threshold=cut.threshold,
                precision=alerted / k,
                misuse_alerted=alerted,
                event_recall=alerted / n_misuse if n_misuse else None,
                incidents_caught=caught,
                incident_recall=caught / n_incidents if n_incidents else None,
                ties_not_alerted=cut.ties_not_alerted,
                scenarios=scenarios,
            )
        )
    if not n_misuse:
        notes.append("recall is undefined: the labels hold no misuse")

    shares = joined.select(
        legitimate=pl.col("explained").filter(pl.col("label") == 0).mean(),
        misuse=pl.col("explained").filter(pl.col("label") == 1).mean(),
        legitimate_mean=pl.col("score").filter(pl.col("label") == 0).mean(),
    ).row(0, named=True)
    return Evaluation(
        events=n,
        misuse_events=n_misuse,
        incidents=n_incidents,
        roc_auc=roc_auc,
        average_precision=average_precision,
        legitimate_explained=_optional_float(shares["legitimate"]),
        misuse_explained=_optional_float(shares["misuse"]),
        legitimate_mean_score=_optional_float(shares["legitimate_mean"]),
        budgets=tuple(results),
        scenarios=tuple(
            ScenarioSummary(row["scenario"], row["events"], row["incidents"], row["mean_score"])
            for row in per_scenario.iter_rows(named=True)
        ),
        notes=tuple(notes),
    )


def _ranking_quality(
    descending: np.ndarray, labels: np.ndarray, notes: list[str]
) -> tuple[float | None, float | None]:
    """ROC AUC and average precision as scikit-learn defines them, from the shared sort.

    ``roc_auc_score`` and ``average_precision_score`` sort again and take about ten
    seconds on ten million distinct scores; the same sums over the distinct scores of the
    sort already made take a fraction of that. Tests hold the two equal.
    """
    n = len(labels)
    positives = int(labels.sum())
    if positives in (0, n):
        only = "legitimate events" if positives == 0 else "misuse"
        notes.append(f"ROC AUC and average precision are undefined: the labels hold only {only}")
        return None, None
    # The last row of each run of equal scores: every distinct score is one threshold.
    last = np.flatnonzero(np.diff(descending))
    last = np.append(last, n - 1)
    true_positives = np.cumsum(labels, dtype=np.int64)[last]
    false_positives = last + 1 - true_positives
    # AUC: each legitimate event counts the misuse scored above it, half those tied with it.
    tp_before = np.concatenate(([0], true_positives[:-1]))
    fp_step = np.diff(false_positives, prepend=0)
    tp_step = true_positives - tp_before
    pairs = np.sum(fp_step * (2 * tp_before + tp_step), dtype=np.float64)
    roc_auc = pairs / (2.0 * positives * (n - positives))
    # AP: precision at each threshold, weighted by the recall it adds.
    precision = true_positives / (true_positives + false_positives)
    average_precision = np.sum(tp_step / positives * precision)
    return float(roc_auc), float(average_precision)


def _alerts(n: int, per_10000: float) -> int:
    """Alerts at a budget: ``floor(n * B / 10000)``, at least one, at most ``n``.

    >>> _alerts(92_287, 10), _alerts(50, 1), _alerts(10, 50_000)
    (92, 1, 10)
    """
    return min(n, max(1, math.floor(n * per_10000 / 10_000)))


def _check_budgets(budgets: Sequence[float]) -> list[float]:
    chosen = sorted({float(b) for b in budgets})
    if not chosen:
        raise ConfigurationError("give at least one budget (alerts per 10,000 accesses)")
    bad = [b for b in chosen if not (math.isfinite(b) and b > 0)]
    if bad:
        raise ConfigurationError(
            f"a budget is a positive number of alerts per 10,000 accesses, not {bad[0]:g}"
        )
    return chosen


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _labels_frame(labels: pl.DataFrame) -> pl.DataFrame:
    _require_columns(labels, LABEL_COLUMNS, "labels")
    frame = labels.select(
        pl.col("event_id").cast(pl.String),
        # Through Float64 so that a label of 0.5 is refused rather than truncated to 0.
        pl.col("label").cast(pl.Float64, strict=False),
        pl.col("scenario").cast(pl.String),
        pl.col("case_id").cast(pl.String),
    )
    if frame.filter(~pl.col("label").is_in([0.0, 1.0]).fill_null(False)).height:
        raise InputFormatError("labels: every label must be 0 or 1")
    frame = frame.with_columns(pl.col("label").cast(pl.Int8))
    _require_ids(frame, "labels")
    if frame.filter((pl.col("label") == 1) & pl.col("case_id").is_null()).height:
        raise InputFormatError("labels: every misuse event (label 1) needs a case_id")
    return frame


def _scores_frame(scores: pl.DataFrame) -> pl.DataFrame:
    _require_columns(scores, SCORE_COLUMNS[:3], "scores")
    if not scores.schema["score"].is_numeric():
        raise InputFormatError("scores: the score column must be numeric")
    if scores.schema["explained"] != pl.Boolean:
        raise InputFormatError("scores: the explained column must be true/false")
    frame = scores.select(
        pl.col("event_id").cast(pl.String), pl.col("score").cast(pl.Float64), "explained"
    )
    in_range = pl.col("score").is_between(0, 100) & ~pl.col("score").is_nan()
    if frame.filter(~in_range | pl.col("score").is_null()).height:
        raise InputFormatError("scores: every score must be a number from 0 to 100")
    if frame["explained"].null_count():
        raise InputFormatError("scores: every row needs explained true or false")
    _require_ids(frame, "scores")
    return frame


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputFormatError(f"{what}: missing column {missing[0]!r}")


def _require_ids(frame: pl.DataFrame, what: str) -> None:
    if frame["event_id"].null_count():
        raise InputFormatError(f"{what}: every row needs an event_id")


def _check_duplicates(frame: pl.DataFrame, what: str) -> None:
    # Distinct hashes prove distinct ids at a tenth of the cost of comparing strings;
    # only equal hashes (a repeat, or a rare collision) need the exact check.
    if frame["event_id"].hash().n_unique() == frame.height:
        return
    repeated = frame.filter(pl.col("event_id").is_duplicated())
    if repeated.height:
        rows = repeated.height - repeated["event_id"].n_unique()
        raise InputFormatError(
            f"{what}: {rows:,} duplicate event_id row(s) (first: {repeated['event_id'][0]}); "
            "each event must appear once"
        )


def _check_cases(misuse: pl.DataFrame) -> None:
    # An incident is one offender's misuse in one scenario; counting a case under two
    # scenarios would count it twice in the per-scenario recall.
    split = (
        misuse.group_by("case_id").agg(pl.col("scenario").n_unique()).filter(pl.col("scenario") > 1)
    )
    if split.height:
        raise InputFormatError(
            f"labels: case {split['case_id'].sort()[0]} appears under more than one scenario"
        )


# Reading the files.


def read_labels(path: Path) -> pl.DataFrame:
    """Read a labels CSV (``event_id,label,scenario,case_id``) as the simulator writes it.

    Raises ``InputFormatError`` naming the file and the first bad line (the header is
    line 1) for a missing column, a label other than 0/1, an empty ``event_id``, or a
    misuse event without a ``case_id``.
    """
    path = Path(path)
    raw = _read_strings(path, LABEL_COLUMNS)
    _first_bad(path, raw, pl.col("event_id").is_null(), "empty event_id")
    _first_bad(
        path, raw, ~pl.col("label").is_in(["0", "1"]).fill_null(False), "label must be 0 or 1"
    )
    _first_bad(
        path,
        raw,
        (pl.col("label") == "1") & pl.col("case_id").is_null(),
        "a misuse event (label 1) needs a case_id",
    )
    return raw.select(
        "event_id",
        pl.col("label").cast(pl.Int8),
        # Legitimate events carry no scenario or case, whatever the file says.
        pl.when(pl.col("label") == "1").then(pl.col("scenario")).alias("scenario"),
        pl.when(pl.col("label") == "1").then(pl.col("case_id")).alias("case_id"),
    )


def read_scores(path: Path) -> pl.DataFrame:
    """Read a scores CSV (``event_id,score,explained,reasons``) as the detector writes it.

    ``reasons`` may be empty or quoted with ``;``, quotes or line breaks inside. Raises
    ``InputFormatError`` naming the file and the first bad line (the header is line 1)
    for a missing column, an empty ``event_id``, a score that is not a number from 0 to
    100, or ``explained`` other than ``true``/``false``.
    """
    path = Path(path)
    raw = _read_strings(path, SCORE_COLUMNS)
    _first_bad(path, raw, pl.col("event_id").is_null(), "empty event_id")
    score = pl.col("score").str.strip_chars().cast(pl.Float64, strict=False)
    _first_bad(path, raw, score.is_null() | score.is_nan(), "score is not a number")
    _first_bad(path, raw, ~score.is_between(0, 100), "score is outside 0..100")
    explained = pl.col("explained").str.strip_chars().str.to_lowercase()
    _first_bad(
        path,
        raw,
        ~explained.is_in(["true", "false"]).fill_null(False),
        "explained must be true or false",
    )
    return raw.select(
        "event_id",
        score.alias("score"),
        (explained == "true").alias("explained"),
        pl.col("reasons").fill_null(""),
    )


def _read_strings(path: Path, columns: Sequence[str]) -> pl.DataFrame:
    header = ",".join(columns)
    try:
        # Everything as text: each column is checked and typed here, with a line number.
        frame = pl.read_csv(path, infer_schema=False, quote_char='"')
    except FileNotFoundError as error:
        raise InputFormatError(f"{path}: no such file") from error
    except pl.exceptions.NoDataError as error:
        raise InputFormatError(f"{path} is empty; expected the header {header}") from error
    except pl.exceptions.PolarsError as error:
        # Polars' message quotes the offending text; find the line ourselves instead.
        raise InputFormatError(f"{path}: {_malformed_line(path)}") from error
    except OSError as error:
        raise InputFormatError(f"cannot read {path}: {error.strerror}") from error
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputFormatError(
            f"{path}: missing column {missing[0]!r}; expected the header {header}"
        )
    return frame.select(columns)


def _first_bad(path: Path, frame: pl.DataFrame, bad: pl.Expr, reason: str) -> None:
    rows = frame.select(bad.arg_true().first()).item()
    if rows is None:
        return
    # A quoted field may hold line breaks: count them in the rows before the bad one.
    breaks = (
        frame.head(rows)
        .select(
            pl.sum_horizontal(pl.all().str.count_matches("\n", literal=True).fill_null(0)).sum()
        )
        .item()
    )
    raise InputFormatError(f"{path}, line {rows + 2 + (breaks or 0)}: {reason}")


def _malformed_line(path: Path) -> str:
    """Why the CSV does not parse, and on which line; only run once Polars has failed."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, strict=True)
            start = 1
            width = None
            for row in reader:
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    return f"line {start}: {len(row)} field(s) where the header has {width}"
                start = reader.line_num + 1
    except csv.Error:
        return f"line {start}: badly quoted field"
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return "not a readable CSV file"
