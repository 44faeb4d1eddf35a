"""``custodes detect`` then ``custodes eval``, as a privacy officer would run them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tests.integration.test_cli import custodes, last_json


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("detect") / "hospital"
    made = custodes(
        "simulate", "--out", str(out), "--seed", "31", "--days", "3", data_dir=out.parent
    )
    assert made.returncode == 0, made.stderr
    return out


def test_detect_scores_every_event_and_eval_reads_them(hospital: Path, tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    run = custodes(
        "detect",
        "--events",
        str(hospital / "events.ndjson"),
        "--context",
        str(hospital / "context"),
        "--scores-out",
        str(scores),
        "--json",
        data_dir=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    summary = last_json(run.stdout)
    written = pl.read_csv(scores)
    assert written.columns == ["event_id", "score", "explained", "reasons"]
    labels = pl.read_csv(hospital / "labels.csv")
    assert summary["scored"] == written.height == labels.height
    assert set(written["event_id"]) == set(labels["event_id"])
    explained = written.filter(pl.col("explained"))
    assert explained["reasons"].str.starts_with("explained: ").all()

    evaluated = custodes(
        "eval",
        "--labels",
        str(hospital / "labels.csv"),
        "--scores",
        str(scores),
        "--json",
        data_dir=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    result = last_json(evaluated.stdout)
    assert result["roc_auc"] >= 0.95
    assert result["explained"]["legitimate"] >= 0.95


def test_detect_prints_the_top_alerts_with_reasons(hospital: Path, tmp_path: Path) -> None:
    run = custodes(
        "detect",
        "--events",
        str(hospital / "events.csv"),
        "--context",
        str(hospital / "context"),
        "--scores-out",
        str(tmp_path / "s.csv"),
        "--top",
        "3",
        data_dir=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "top alerts" in run.stdout and "scored" in run.stdout


def test_train_until_outside_the_log_is_one_clear_line(hospital: Path, tmp_path: Path) -> None:
    run = custodes(
        "detect",
        "--events",
        str(hospital / "events.csv"),
        "--context",
        str(hospital / "context"),
        "--scores-out",
        str(tmp_path / "s.csv"),
        "--train-until",
        "1999-01-01",
        data_dir=tmp_path,
    )
    assert run.returncode == 1
    assert run.stderr.startswith("error: --train-until 1999-01-01")
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_missing_context_folder_is_one_clear_line(hospital: Path, tmp_path: Path) -> None:
    run = custodes(
        "detect",
        "--events",
        str(hospital / "events.csv"),
        "--context",
        str(tmp_path / "nowhere"),
        "--scores-out",
        str(tmp_path / "s.csv"),
        data_dir=tmp_path,
    )
    assert run.returncode == 1
    assert "is not a folder of context files" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_user_rules_are_added_to_the_pack(hospital: Path, tmp_path: Path) -> None:
    rule = tmp_path / "night.yml"
    rule.write_text(
        "title: Any access at night\n"
        "id: 0b7e7a0e-5d0c-4a8e-9a51-3f8a1f2b9c11\n"
        "status: experimental\n"
        "level: critical\n"
        "reason: opened in the night shift test window\n"
        "logsource:\n  product: ehr\n  category: record_access\n"
        "tags: [hipaa.164.312.b, attack.collection]\n"
        "detection:\n  selection:\n    hour: 3\n  condition: selection\n"
    )
    scores = tmp_path / "s.csv"
    run = custodes(
        "detect",
        "--events",
        str(hospital / "events.csv"),
        "--context",
        str(hospital / "context"),
        "--scores-out",
        str(scores),
        "--rules",
        str(rule),
        "--json",
        data_dir=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    written = pl.read_csv(scores)
    assert written["reasons"].str.contains("night shift test window").any()
