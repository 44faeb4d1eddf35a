"""Evaluation of detector scores: hand-computed tables, tie-breaking, every error message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from custodes.core.errors import ConfigurationError, InputFormatError
from custodes.detect.evaluate import evaluate, read_labels, read_scores

# Ten events, four misuse in three incidents. Ranked by score the labels read
# 1 0 1 0 1 0 1 0 0 0, so by hand:
#   AUC = (6 + 5 + 4 + 3) / (4 * 6) = 0.75
#   AP  = (1/1 + 2/3 + 3/5 + 4/7) / 4 = 149/210
EVENTS = [
    # event_id, score, label, scenario, case_id, explained
    ("e00", 95.0, 1, "snooping", "case-A", False),
    ("e01", 90.0, 0, None, None, True),
    ("e02", 80.0, 1, "export", "case-B", False),
    ("e03", 70.0, 0, None, None, True),
    ("e04", 60.0, 1, "export", "case-B", True),
    ("e05", 50.0, 0, None, None, True),
    ("e06", 40.0, 1, "snooping", "case-C", False),
    ("e07", 30.0, 0, None, None, True),
    ("e08", 20.0, 0, None, None, False),
    ("e09", 10.0, 0, None, None, False),
]


def frames(events: list[tuple]) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids, score, label, scenario, case, explained = (list(c) for c in zip(*events, strict=True))
    labels = pl.DataFrame(
        {"event_id": ids, "label": label, "scenario": scenario, "case_id": case},
        schema_overrides={"label": pl.Int8, "scenario": pl.String, "case_id": pl.String},
    )
    scores = pl.DataFrame({"event_id": ids, "score": score, "explained": explained})
    return labels, scores


def test_hand_computed_ranking_and_explanations() -> None:
    result = evaluate(*frames(EVENTS))
    assert (result.events, result.misuse_events, result.incidents) == (10, 4, 3)
    assert result.roc_auc == pytest.approx(0.75)
    assert result.average_precision == pytest.approx(149 / 210)
    assert result.legitimate_explained == pytest.approx(4 / 6)
    assert result.misuse_explained == pytest.approx(1 / 4)
    assert result.legitimate_mean_score == pytest.approx(45.0)
    summary = {s.scenario: (s.events, s.incidents, s.mean_score) for s in result.scenarios}
    assert summary == {"export": (2, 1, 70.0), "snooping": (2, 2, 67.5)}
    assert result.notes == ()


@pytest.mark.parametrize(
    ("budget", "alerts", "threshold", "precision", "event_recall", "incident_recall", "caught"),
    [
        # n = 10 events, so B per 10,000 gives floor(B / 1000) alerts, at least 1.
        (1, 1, 95.0, 1.0, 1 / 4, 1 / 3, {"export": 0, "snooping": 1}),
        (1000, 1, 95.0, 1.0, 1 / 4, 1 / 3, {"export": 0, "snooping": 1}),
        (2000, 2, 90.0, 1 / 2, 1 / 4, 1 / 3, {"export": 0, "snooping": 1}),
        (3000, 3, 80.0, 2 / 3, 2 / 4, 2 / 3, {"export": 1, "snooping": 1}),
        (5000, 5, 60.0, 3 / 5, 3 / 4, 2 / 3, {"export": 1, "snooping": 1}),
        (7000, 7, 40.0, 4 / 7, 1.0, 1.0, {"export": 1, "snooping": 2}),
        (20000, 10, 10.0, 4 / 10, 1.0, 1.0, {"export": 1, "snooping": 2}),
    ],
)
def test_hand_computed_budgets(
    budget, alerts, threshold, precision, event_recall, incident_recall, caught
) -> None:
    (result,) = evaluate(*frames(EVENTS), budgets=[budget]).budgets
    assert result.per_10000 == budget
    assert (result.alerts, result.threshold) == (alerts, threshold)
    assert result.precision == pytest.approx(precision)
    assert result.event_recall == pytest.approx(event_recall)
    assert result.incident_recall == pytest.approx(incident_recall)
    assert {s.scenario: s.incidents_caught for s in result.scenarios} == caught
    assert {s.scenario: s.incidents for s in result.scenarios} == {"export": 1, "snooping": 2}
    assert result.ties_not_alerted == 0


def test_per_scenario_events_alerted() -> None:
    (result,) = evaluate(*frames(EVENTS), budgets=[3000]).budgets
    rows = {s.scenario: s for s in result.scenarios}
    assert (rows["export"].events, rows["export"].events_alerted) == (2, 1)
    assert rows["export"].incident_recall == 1.0
    assert (rows["snooping"].events, rows["snooping"].events_alerted) == (2, 1)
    assert rows["snooping"].incident_recall == 0.5


def test_budgets_are_sorted_and_deduplicated() -> None:
    result = evaluate(*frames(EVENTS), budgets=[5000, 1000, 5000.0])
    assert [b.per_10000 for b in result.budgets] == [1000, 5000]
    assert result.at_budget(5000).alerts == 5 and result.at_budget(42) is None


def test_as_json_shape() -> None:
    data = evaluate(*frames(EVENTS), budgets=[3000]).as_json()
    assert set(data) == {
        "events", "misuse_events", "incidents", "roc_auc", "average_precision", "explained",
        "legitimate", "scenarios", "budgets", "tie_break", "notes",
    }  # fmt: skip
    assert data["explained"] == {"legitimate": pytest.approx(4 / 6), "misuse": 0.25}
    assert data["legitimate"] == {"events": 6, "mean_score": 45.0}
    assert data["scenarios"]["export"] == {"events": 2, "incidents": 1, "mean_score": 70.0}
    (budget,) = data["budgets"]
    assert budget["alerts"] == 3 and budget["misuse_alerted"] == 2
    assert budget["scenarios"]["snooping"] == {
        "incidents": 2, "incidents_caught": 1, "incident_recall": 0.5, "events": 2,
        "events_alerted": 1,
    }  # fmt: skip
    assert data["tie_break"] == "score descending, then event_id ascending"


# Tie-breaking.

TIED = [
    ("e10", 50.0, 0, None, None, False),
    ("e9", 50.0, 1, "snooping", "case-A", False),
    ("e2", 50.0, 0, None, None, False),
    ("e1", 10.0, 0, None, None, False),
]


def test_ties_go_to_the_smaller_event_id() -> None:
    # As strings "e10" < "e2" < "e9": the one alert goes to e10, which is legitimate.
    (one,) = evaluate(*frames(TIED), budgets=[2500]).budgets
    assert (one.alerts, one.threshold, one.misuse_alerted, one.ties_not_alerted) == (1, 50, 0, 2)
    (two,) = evaluate(*frames(TIED), budgets=[5000]).budgets
    assert (two.misuse_alerted, two.ties_not_alerted) == (0, 1)
    (three,) = evaluate(*frames(TIED), budgets=[7500]).budgets
    assert (three.misuse_alerted, three.ties_not_alerted, three.incident_recall) == (1, 0, 1.0)


def test_split_ties_are_noted() -> None:
    result = evaluate(*frames(TIED), budgets=[2500])
    assert result.notes == (
        "at 2500 per 10,000, 2 event(s) share the threshold score 50 with alerted events "
        "but are not alerted (score descending, then event_id ascending)",
    )


@pytest.mark.parametrize("seed", range(5))
def test_row_order_does_not_change_the_result(seed: int) -> None:
    labels, scores = frames(TIED + EVENTS)
    expected = evaluate(labels, scores, budgets=[1, 2500, 5000]).as_json()
    shuffled = evaluate(
        labels.sample(fraction=1.0, shuffle=True, seed=seed),
        scores.sample(fraction=1.0, shuffle=True, seed=seed + 100),
        budgets=[1, 2500, 5000],
    )
    assert shuffled.as_json() == expected


# One class only.


def test_only_legitimate_events() -> None:
    legitimate = [e for e in EVENTS if e[2] == 0]
    result = evaluate(*frames(legitimate), budgets=[5000])
    assert result.roc_auc is None and result.average_precision is None
    assert result.misuse_explained is None and result.incidents == 0
    (budget,) = result.budgets
    assert budget.precision == 0.0 and budget.event_recall is None
    assert budget.incident_recall is None and budget.scenarios == ()
    assert "undefined: the labels hold only legitimate events" in result.notes[0]
    assert "recall is undefined" in result.notes[-1]


def test_only_misuse() -> None:
    misuse = [e for e in EVENTS if e[2] == 1]
    result = evaluate(*frames(misuse), budgets=[5000])
    assert result.roc_auc is None and result.legitimate_explained is None
    assert result.notes == (
        "ROC AUC and average precision are undefined: the labels hold only misuse",
    )
    assert result.budgets[0].precision == 1.0


# Errors of evaluate.


def _drop(frame: pl.DataFrame, event_id: str) -> pl.DataFrame:
    return frame.filter(pl.col("event_id") != event_id)


def _extra_label() -> pl.DataFrame:
    return pl.DataFrame(
        {"event_id": ["zz"], "label": [0], "scenario": [None], "case_id": [None]},
        schema={
            "event_id": pl.String,
            "label": pl.Int8,
            "scenario": pl.String,
            "case_id": pl.String,
        },
    )


LABELS, SCORES = frames(EVENTS)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        (
            LABELS,
            _drop(_drop(SCORES, "e03"), "e05"),
            "2 labelled event(s) have no score (first: e03); score every labelled event",
        ),
        (
            _drop(LABELS, "e07"),
            SCORES,
            "1 scored event(s) are not in the labels (first: e07); "
            "score the same events the labels hold",
        ),
        (
            pl.concat([LABELS, LABELS.head(2)]),
            SCORES,
            "labels: 2 duplicate event_id row(s) (first: e00); each event must appear once",
        ),
        (
            LABELS,
            pl.concat([SCORES, SCORES.slice(4, 1)]),
            "scores: 1 duplicate event_id row(s) (first: e04); each event must appear once",
        ),
        (
            pl.concat([LABELS, _extra_label()]),
            pl.concat([SCORES, SCORES.slice(4, 1)]),
            "scores: 1 duplicate event_id row(s) (first: e04); each event must appear once",
        ),
        (LABELS.head(0), SCORES.head(0), "the labels hold no events to evaluate"),
        (LABELS.drop("case_id"), SCORES, "labels: missing column 'case_id'"),
        (LABELS, SCORES.drop("explained"), "scores: missing column 'explained'"),
        (
            LABELS.with_columns(label=pl.lit(2)),
            SCORES,
            "labels: every label must be 0 or 1",
        ),
        (
            LABELS.with_columns(label=pl.col("label") / 2),
            SCORES,
            "labels: every label must be 0 or 1",
        ),
        (
            LABELS.with_columns(case_id=pl.lit(None, pl.String)),
            SCORES,
            "labels: every misuse event (label 1) needs a case_id",
        ),
        (
            LABELS.with_columns(
                scenario=pl.when(pl.col("event_id") == "e04")
                .then(pl.lit("other"))
                .otherwise("scenario")
            ),
            SCORES,
            "labels: case case-B appears under more than one scenario",
        ),
        (
            LABELS,
            SCORES.with_columns(score=pl.col("score").cast(pl.String)),
            "scores: the score column must be numeric",
        ),
        (
            LABELS,
            SCORES.with_columns(score=pl.col("score") * 2),
            "scores: every score must be a number from 0 to 100",
        ),
        (
            LABELS,
            SCORES.with_columns(score=pl.lit(float("nan"))),
            "scores: every score must be a number from 0 to 100",
        ),
        (
            LABELS,
            SCORES.with_columns(explained=pl.lit("yes")),
            "scores: the explained column must be true/false",
        ),
        (
            LABELS,
            SCORES.with_columns(explained=pl.lit(None, pl.Boolean)),
            "scores: every row needs explained true or false",
        ),
        (
            LABELS.with_columns(event_id=pl.lit(None, pl.String)),
            SCORES,
            "labels: every row needs an event_id",
        ),
    ],
)
def test_evaluate_errors(labels: pl.DataFrame, scores: pl.DataFrame, message: str) -> None:
    with pytest.raises(InputFormatError) as caught:
        evaluate(labels, scores)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ([], "give at least one budget (alerts per 10,000 accesses)"),
        ([10, 0], "a budget is a positive number of alerts per 10,000 accesses, not 0"),
        ([-5], "a budget is a positive number of alerts per 10,000 accesses, not -5"),
        ([float("nan")], "a budget is a positive number of alerts per 10,000 accesses, not nan"),
    ],
)
def test_bad_budgets(budgets: list[float], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        evaluate(LABELS, SCORES, budgets=budgets)
    assert str(caught.value) == message


# Reading the files.

LABELS_CSV = """\
event_id,label,scenario,case_id
e00,1,snooping,case-A
e01,0,,
e02,1,export,case-B
"""

SCORES_CSV = """\
event_id,score,explained,reasons
e00,95.5,false,"no treatment relationship; same surname; 02:14 outside shift"
e01,3,TRUE,
e02,80,false,"said ""hello""; then left"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_labels(tmp_path: Path) -> None:
    labels = read_labels(write(tmp_path, "labels.csv", LABELS_CSV))
    assert labels.schema == pl.Schema(
        {"event_id": pl.String, "label": pl.Int8, "scenario": pl.String, "case_id": pl.String}
    )
    assert labels.row(1) == ("e01", 0, None, None)
    assert labels.row(2) == ("e02", 1, "export", "case-B")


def test_read_labels_drops_scenario_of_legitimate_events(tmp_path: Path) -> None:
    labels = read_labels(write(tmp_path, "labels.csv", LABELS_CSV + "e03,0,export,case-B\n"))
    assert labels.row(3) == ("e03", 0, None, None)


def test_read_scores_keeps_quoted_reasons(tmp_path: Path) -> None:
    scores = read_scores(write(tmp_path, "scores.csv", SCORES_CSV))
    assert scores.schema == pl.Schema(
        {"event_id": pl.String, "score": pl.Float64, "explained": pl.Boolean, "reasons": pl.String}
    )
    assert scores["score"].to_list() == [95.5, 3.0, 80.0]
    assert scores["explained"].to_list() == [False, True, False]
    assert scores["reasons"].to_list() == [
        "no treatment relationship; same surname; 02:14 outside shift",
        "",
        'said "hello"; then left',
    ]


def test_files_read_back_evaluate(tmp_path: Path) -> None:
    result = evaluate(
        read_labels(write(tmp_path, "labels.csv", LABELS_CSV)),
        read_scores(write(tmp_path, "scores.csv", SCORES_CSV)),
        budgets=[3334],
    )
    assert result.roc_auc == 1.0 and result.budgets[0].incident_recall == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "event_id,label,scenario\ne1,0,\n",
            ": missing column 'case_id'; expected the header event_id,label,scenario,case_id",
        ),
        ("", " is empty; expected the header event_id,label,scenario,case_id"),
        (LABELS_CSV + "e03,2,,\n", ", line 5: label must be 0 or 1"),
        (LABELS_CSV + "e03,,,\n", ", line 5: label must be 0 or 1"),
        (LABELS_CSV + "e03,yes,,\n", ", line 5: label must be 0 or 1"),
        (LABELS_CSV + ",0,,\n", ", line 5: empty event_id"),
        (LABELS_CSV + "e03,1,snooping,\n", ", line 5: a misuse event (label 1) needs a case_id"),
        (LABELS_CSV + "e03,0,,,extra\n", ": line 5: 5 field(s) where the header has 4"),
    ],
)
def test_read_labels_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "labels.csv", text)
    with pytest.raises(InputFormatError) as caught:
        read_labels(path)
    assert str(caught.value) == f"{path}{message}"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "event_id,score,reasons\ne1,3,\n",
            ": missing column 'explained'; expected the header event_id,score,explained,reasons",
        ),
        (SCORES_CSV + "e03,abc,false,\n", ", line 5: score is not a number"),
        (SCORES_CSV + "e03,,false,\n", ", line 5: score is not a number"),
        (SCORES_CSV + "e03,nan,false,\n", ", line 5: score is not a number"),
        (SCORES_CSV + "e03,100.5,false,\n", ", line 5: score is outside 0..100"),
        (SCORES_CSV + "e03,-1,false,\n", ", line 5: score is outside 0..100"),
        (SCORES_CSV + "e03,inf,false,\n", ", line 5: score is outside 0..100"),
        (SCORES_CSV + "e03,1,yes,\n", ", line 5: explained must be true or false"),
        (SCORES_CSV + "e03,1,,\n", ", line 5: explained must be true or false"),
        (SCORES_CSV + ",1,true,\n", ", line 5: empty event_id"),
        # A reason with line breaks inside quotes: line numbers still count real lines.
        (
            SCORES_CSV + 'e03,1,true,"one\ntwo\nthree"\ne04,x,true,\n',
            ", line 8: score is not a number",
        ),
        (SCORES_CSV + 'e03,1,true,"never closed\n', ": line 5: badly quoted field"),
    ],
)
def test_read_scores_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "scores.csv", text)
    with pytest.raises(InputFormatError) as caught:
        read_scores(path)
    assert str(caught.value) == f"{path}{message}"
    assert "\n" not in str(caught.value)


def test_read_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match=r"nothere\.csv: no such file$"):
        read_scores(tmp_path / "nothere.csv")


# Properties.


@st.composite
def labelled_scores(draw) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(1, 40))
    label = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    case = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    # Few distinct values make ties common; any float in 0..100 is fair too.
    value = draw(
        st.sampled_from(
            [st.sampled_from([0.0, 12.5, 50.0, 99.9, 100.0]), st.floats(0, 100, allow_nan=False)]
        )
    )
    score = draw(st.lists(value, min_size=n, max_size=n))
    explained = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ids = draw(
        st.lists(st.from_regex(r"e[0-9]{1,4}", fullmatch=True), min_size=n, max_size=n, unique=True)
    )
    events = [
        (i, s, int(m), f"scenario-{c % 2}" if m else None, f"case-{c}" if m else None, x)
        for i, s, m, c, x in zip(ids, score, label, case, explained, strict=True)
    ]
    return frames(events)


BUDGETS = (0.5, 1, 10, 100, 1000, 2500, 5000, 10000)


@settings(max_examples=200, deadline=None)
@given(labelled_scores())
def test_shares_are_shares_and_recall_grows_with_the_budget(data) -> None:
    labels, scores = data
    result = evaluate(labels, scores, budgets=BUDGETS)
    previous = None
    for budget in result.budgets:
        assert 0.0 <= budget.precision <= 1.0
        assert 1 <= budget.alerts <= result.events
        assert budget.misuse_alerted <= min(budget.alerts, result.misuse_events)
        if result.misuse_events:
            assert 0.0 <= budget.event_recall <= 1.0
            assert 0.0 <= budget.incident_recall <= 1.0
        if previous is not None:
            assert budget.alerts >= previous.alerts
            assert budget.threshold <= previous.threshold
            assert budget.misuse_alerted >= previous.misuse_alerted
            assert budget.incidents_caught >= previous.incidents_caught
        previous = budget
    assert result.budgets[-1].alerts == result.events  # 10,000 per 10,000: everything


@settings(max_examples=200, deadline=None)
@given(labelled_scores())
def test_ranking_measures_match_scikit_learn(data) -> None:
    labels, scores = data
    result = evaluate(labels, scores, budgets=[10])
    truth = labels["label"].to_numpy()
    if 0 < truth.sum() < len(truth):
        joined = labels.join(scores, on="event_id")
        y, s = joined["label"].to_numpy(), joined["score"].to_numpy()
        assert result.roc_auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert result.average_precision == pytest.approx(average_precision_score(y, s), abs=1e-12)
    else:
        assert result.roc_auc is None and result.average_precision is None


@settings(max_examples=100, deadline=None)
@given(labelled_scores())
def test_scores_equal_to_labels_rank_perfectly(data) -> None:
    labels, _ = data
    truth = labels["label"].to_numpy()
    scores = pl.DataFrame(
        {
            "event_id": labels["event_id"],
            "score": truth.astype(np.float64) * 100,
            "explained": np.zeros(len(truth), dtype=bool),
        }
    )
    result = evaluate(labels, scores, budgets=[10])
    if 0 < truth.sum() < len(truth):
        assert result.roc_auc == 1.0 and result.average_precision == 1.0


def test_read_scores_ignores_extra_columns(tmp_path: Path) -> None:
    # The engine also writes the name of the explanation; evaluation does not need it.
    text = 'event_id,score,explained,explanation,reasons\ne1,7,true,care_team,""\n'
    scores = read_scores(write(tmp_path, "scores.csv", text))
    assert scores.columns == ["event_id", "score", "explained", "reasons"]
    assert scores.row(0) == ("e1", 7.0, True, "")
