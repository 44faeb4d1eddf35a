"""``custodes detect`` stores its alerts and cases; ``custodes cases`` works the queue."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.test_cli import custodes, last_json


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("cases")
    made = custodes("simulate", "--out", str(data / "h"), "--seed", "31", "--days", "3",
                    data_dir=data)
    assert made.returncode == 0, made.stderr
    run = custodes(
        "detect", "--events", str(data / "h" / "events.ndjson"), "--context",
        str(data / "h" / "context"), "--scores-out", str(data / "s.csv"), "--budget", "10",
        "--json", data_dir=data,
    )
    assert run.returncode == 0, run.stderr
    return data, last_json(run.stdout)


def test_detect_stores_alerts_at_the_budget_and_builds_cases(detected) -> None:
    data, summary = detected
    # About 10 alerts per 10,000 accesses (ties at the threshold may add a few).
    assert 0 < summary["alerts"] <= summary["scored"] * 12 / 10_000
    assert 0 < summary["cases"] <= summary["alerts"]
    listed = custodes("cases", "list", "--json", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    cases = last_json(listed.stdout)["cases"]
    assert len(cases) == summary["cases"]
    # Every alert is in one user case; a patient case ("one record, many users") may
    # hold some of them again.
    assert sum(c["alerts"] for c in cases if c["subject"] == "user") == summary["alerts"]
    ranks = ["critical", "high", "medium", "low"]
    assert [ranks.index(c["severity"]) for c in cases] == sorted(
        ranks.index(c["severity"]) for c in cases
    )
    unsure = custodes("cases", "list", "--order", "uncertain", "--json", data_dir=data)
    assert unsure.returncode == 0, unsure.stderr
    least_sure = last_json(unsure.stdout)["cases"]
    assert sorted(c["case_id"] for c in least_sure) == sorted(c["case_id"] for c in cases)
    assert [c["uncertainty"] for c in least_sure] == sorted(
        (c["uncertainty"] for c in least_sure), reverse=True
    )


def test_detect_again_finds_its_alerts_known(detected) -> None:
    data, summary = detected
    again = custodes(
        "detect", "--events", str(data / "h" / "events.ndjson"), "--context",
        str(data / "h" / "context"), "--scores-out", str(data / "s2.csv"), "--json",
        data_dir=data,
    )
    assert again.returncode == 0, again.stderr
    result = last_json(again.stdout)
    assert (result["alerts"], result["new_cases"]) == (0, 0)


def test_show_and_close_a_case(detected) -> None:
    data, _ = detected
    first = last_json(custodes("cases", "list", "--json", data_dir=data).stdout)["cases"][0]
    shown = custodes("cases", "show", first["case_id"], "--json", data_dir=data)
    assert shown.returncode == 0, shown.stderr
    detail = last_json(shown.stdout)
    assert len(detail["alerts"]) == first["alerts"] and detail["case"]["story"]
    text = custodes("cases", "show", first["case_id"], data_dir=data)
    assert first["case_id"] in text.stdout and "reason" in text.stdout

    closed = custodes("cases", "close", first["case_id"], "--verdict", "false_positive",
                      "--note", "covering a colleague", "--json", data_dir=data)
    assert closed.returncode == 0, closed.stderr
    assert last_json(closed.stdout)["case"]["verdict"] == "false_positive"
    remaining = last_json(custodes("cases", "list", "--json", data_dir=data).stdout)["cases"]
    assert first["case_id"] not in {c["case_id"] for c in remaining}

    twice = custodes("cases", "close", first["case_id"], "--verdict", "false_positive",
                     data_dir=data)
    assert twice.returncode == 1
    assert "already closed" in twice.stderr and "Traceback" not in twice.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cases", "show", "c-nope"), "no case"),
        (("cases", "close", "c-nope", "--verdict", "maybe"), "maybe"),
        (("cases", "suppress", "--scope", "user", "--value", "s1", "--reason", " "),
         "needs a reason"),
    ],
)
def test_bad_input_is_one_clear_line(detected, args, message) -> None:
    data, _ = detected
    run = custodes(*args, data_dir=data)
    assert run.returncode != 0
    assert message in run.stderr and "Traceback" not in run.stderr


def test_suppress_prints_its_expiry(detected) -> None:
    data, _ = detected
    run = custodes("cases", "suppress", "--scope", "department", "--value", "icu", "--reason",
                   "drill", "--hours", "2", "--json", data_dir=data)
    assert run.returncode == 0, run.stderr
    assert last_json(run.stdout)["suppression"]["scope"] == "department"


def test_verdicts_train_the_ranker_on_the_next_run(detected) -> None:
    data, _ = detected
    listed = last_json(custodes("cases", "list", "--json", data_dir=data).stdout)["cases"]
    confirmed = custodes("cases", "close", listed[0]["case_id"], "--verdict",
                         "confirmed_misuse", data_dir=data)
    assert confirmed.returncode == 0, confirmed.stderr
    run = custodes(
        "detect", "--events", str(data / "h" / "events.ndjson"), "--context",
        str(data / "h" / "context"), "--scores-out", str(data / "s3.csv"), "--json",
        data_dir=data,
    )
    assert run.returncode == 0, run.stderr
    summary = last_json(run.stdout)
    assert summary["verdicts"] > 0 and summary["supervised"] is True
    versions = (data / "model_versions.ndjson").read_text().splitlines()
    assert len(versions) >= 2 and '"supervised":true' in versions[-1]


def test_undo_due_with_nothing_due(detected) -> None:
    data, _ = detected
    run = custodes("cases", "undo-due", "--json", data_dir=data)
    assert run.returncode == 0, run.stderr
    assert last_json(run.stdout) == {"undone": []}
