"""``custodes eval`` on real files: tables for people, one JSON line for programs, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from custodes.cli import main as cli_main
from custodes.cli.evaluate import register
from custodes.core.errors import InputFormatError

LABELS = """\
event_id,label,scenario,case_id
e00,1,family_snooping,case-00001
e01,0,,
e02,1,bulk_export,case-00002
e03,0,,
e04,1,bulk_export,case-00002
e05,0,,
e06,1,family_snooping,case-00003
e07,0,,
e08,0,,
e09,0,,
"""

SCORES = """\
event_id,score,explained,reasons
e09,10,false,
e08,20,false,
e07,30,true,"on care team; ""attending"" nurse"
e06,40,false,"same surname; 02:14 outside shift"
e05,50,true,
e04,60,true,
e03,70,true,"colleague on care team"
e02,80,false,"export; 1,200 records"
e01,90,true,
e00,95,false,"no treatment relationship; same surname"
"""


def eval_app() -> typer.Typer:
    """A fresh application with only ``eval``, as main.py will register it."""
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:  # a group, so the command keeps its name
        pass

    register(app)
    return app


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    labels, scores = tmp_path / "labels.csv", tmp_path / "scores.csv"
    labels.write_text(LABELS, encoding="utf-8")
    scores.write_text(SCORES, encoding="utf-8")
    return labels, scores


def run(*args: str):
    return CliRunner().invoke(eval_app(), ["eval", *args])


def test_json_is_the_last_line(files: tuple[Path, Path]) -> None:
    labels, scores = files
    result = run("--labels", str(labels), "--scores", str(scores), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert (data["events"], data["misuse_events"], data["incidents"]) == (10, 4, 3)
    assert data["roc_auc"] == pytest.approx(0.75)
    assert [b["per_10000"] for b in data["budgets"]] == [1, 5, 10, 20, 50]
    assert all(b["alerts"] == 1 for b in data["budgets"])  # 10 events: at least one alert
    assert data["budgets"][0]["scenarios"]["family_snooping"]["incidents_caught"] == 1


def test_repeated_budgets(files: tuple[Path, Path]) -> None:
    labels, scores = files
    result = run(
        "--labels", str(labels), "--scores", str(scores), "--json",
        "--budget", "3000", "--budget", "5000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    budgets = json.loads(result.stdout.strip().splitlines()[-1])["budgets"]
    assert [(b["alerts"], b["precision"]) for b in budgets] == [(3, 2 / 3), (5, 3 / 5)]
    assert [b["incident_recall"] for b in budgets] == [2 / 3, 2 / 3]


def test_tables_for_people(files: tuple[Path, Path]) -> None:
    labels, scores = files
    result = run("--labels", str(labels), "--scores", str(scores), "--budget", "3000")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for expected in ("ROC AUC", "0.750", "alert budgets", "66.7%", "family_snooping"):
        assert expected in text
    # No budget of 10 per 10,000 was asked for: the scenarios are shown at the first one.
    assert "incidents caught at 3000 alerts per 10,000" in text


def test_scenarios_at_ten_per_ten_thousand_by_default(files: tuple[Path, Path]) -> None:
    labels, scores = files
    result = run("--labels", str(labels), "--scores", str(scores))
    assert "incidents caught at 10 alerts per 10,000" in result.stdout


@pytest.mark.parametrize(
    ("which", "text", "message"),
    [
        ("scores", SCORES.replace("e04,60", "e04,sixty"), "line 7: score is not a number"),
        ("labels", LABELS.replace("e05,0", "e05,3"), "line 7: label must be 0 or 1"),
        ("scores", SCORES.replace("e01,90,true,\n", ""), "1 labelled event(s) have no score"),
    ],
)
def test_bad_file_fails_with_one_line(
    files: tuple[Path, Path], which: str, text: str, message: str
) -> None:
    labels, scores = files
    (labels if which == "labels" else scores).write_text(text, encoding="utf-8")
    result = run("--labels", str(labels), "--scores", str(scores), "--json")
    assert result.exit_code != 0
    assert isinstance(result.exception, InputFormatError)
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert "Traceback" not in result.output


def test_bad_file_through_the_entry_point(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # main.run turns a CustodesError into one line on stderr; eval is not registered on
    # main's app yet, so run it with the fresh one.
    labels, scores = files
    scores.write_text(SCORES.replace("e04,60", "e04,160"), encoding="utf-8")
    monkeypatch.setattr(cli_main, "app", eval_app())
    monkeypatch.setattr(
        sys, "argv", ["custodes", "eval", "--labels", str(labels), "--scores", str(scores)]
    )
    with pytest.raises(SystemExit) as stop:
        cli_main.run()
    assert stop.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {scores}, line 7: score is outside 0..100\n"
    assert "Traceback" not in captured.out + captured.err
