"""The command line as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EVENTS = Path(__file__).parents[1] / "fixtures" / "events"


def custodes(*args: str, data_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "CUSTODES_DATA_DIR": str(data_dir),
        "CUSTODES_WORKERS": "2",
        **(env or {}),
    }
    environment.pop(
        "CUSTODES_DATABASE_URL", None
    ) if not env or "CUSTODES_DATABASE_URL" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "custodes", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_version(tmp_path: Path) -> None:
    result = custodes("--version", data_dir=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("custodes 0.")


def test_ingest_events_json_counts_and_idempotence(tmp_path: Path) -> None:
    first = custodes(
        "ingest", "events", str(EVENTS / "good_and_bad.ndjson"), "--json", data_dir=tmp_path
    )
    assert first.returncode == 0, first.stderr
    assert last_json(first.stdout) == {"read": 12, "accepted": 3, "quarantined": 9, "duplicates": 0}
    again = custodes(
        "ingest", "events", str(EVENTS / "good_and_bad.ndjson"), "--json", data_dir=tmp_path
    )
    assert last_json(again.stdout) == {"read": 12, "accepted": 3, "quarantined": 9, "duplicates": 3}
    listed = custodes("ingest", "quarantine", "--json", "--limit", "100", data_dir=tmp_path)
    rows = last_json(listed.stdout)["quarantined"]
    assert len(rows) == 18 and {r["line"] for r in rows} == {3, 5, 6, 7, 8, 9, 11, 12, 13}
    assert all("raw" not in r for r in rows)  # raw lines may hold PHI: not printed


def test_epic_mapping_and_format_flag(tmp_path: Path) -> None:
    result = custodes(
        "ingest",
        "events",
        str(EVENTS / "epic_export.csv"),
        "--mapping",
        "epic",
        "--json",
        data_dir=tmp_path,
    )
    assert last_json(result.stdout) == {"read": 7, "accepted": 4, "quarantined": 3, "duplicates": 0}
    forced = custodes(
        "ingest",
        "events",
        str(EVENTS / "good_and_bad.csv"),
        "--format",
        "csv",
        "--json",
        data_dir=tmp_path,
    )
    assert last_json(forced.stdout)["accepted"] == 3


def test_nothing_usable_exits_non_zero(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ndjson"
    junk.write_text('{"resourceType": "AuditEvent", broken\nnot json either\n')
    result = custodes("ingest", "events", str(junk), "--json", data_dir=tmp_path / "d")
    assert result.returncode == 1
    assert last_json(result.stdout) == {"read": 2, "accepted": 0, "quarantined": 2, "duplicates": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ingest", "events", "/nonexistent/file.ndjson"],
            "error: /nonexistent/file.ndjson is not a file",
        ),
        (
            ["ingest", "events", "EVENTS/epic_export.csv"],
            "error: epic_export.csv: header lacks required column(s)",
        ),
        (
            ["ingest", "events", "EVENTS/good_and_bad.csv", "--mapping", "/nope.yaml"],
            "error: cannot read mapping file",
        ),
        (
            ["ingest", "events", "EVENTS/good_and_bad.csv", "--format", "xml"],
            "error: unknown event format 'xml'",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("EVENTS", str(EVENTS)) for a in args]
    result = custodes(*args, data_dir=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(message), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {"CUSTODES_DATABASE_URL": "postgresql+psycopg://custodes:secret@127.0.0.1:1/none"}
    result = custodes("db", "upgrade", data_dir=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: cannot reach the database at postgresql+psycopg://custodes:***@127.0.0.1:1/none"
    )
    assert "secret" not in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = custodes("--debug", "ingest", "events", "/nonexistent.ndjson", data_dir=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.integration
def test_ingest_into_postgresql(tmp_path: Path, postgres_url: str) -> None:
    env = {"CUSTODES_DATABASE_URL": postgres_url}
    upgraded = custodes("db", "upgrade", data_dir=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    result = custodes(
        "ingest", "events", str(EVENTS / "good_and_bad.csv"), "--json", data_dir=tmp_path, env=env
    )
    assert last_json(result.stdout) == {
        "read": 11,
        "accepted": 3,
        "quarantined": 8,
        "duplicates": 0,
    }


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    result = custodes("demo", "--data-dir", str(tmp_path / "demo"), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "quarantined" in result.stdout and "0 new" in result.stdout
    assert "0 quarantined" in result.stdout  # the simulated hospital ingests cleanly
    assert "9. Cases:" in result.stdout  # the case queue after detection
    listed = custodes("cases", "list", "--json", data_dir=tmp_path / "demo")
    assert listed.returncode == 0 and json.loads(listed.stdout.splitlines()[-1])["cases"]
    assert (tmp_path / "demo" / "archive" / "access").is_dir()
    assert "Signing in" in result.stdout and "/auth/login" in result.stdout
    vault = " ".join(result.stdout.split())  # Rich wraps lines
    imported = re.search(r"the hospital's ([\d,]+) FHIR records imported", vault)
    assert imported and int(imported[1].replace(",", "")) > 10_000
    assert "reads Encounter/" in vault and "denied: no care relationship with the patient" in vault
    assert "queued for a privacy officer's review" in vault and "a fresh second factor is required" in vault
    # An officer's verdict and suppression are audited entries too.
    decided = re.search(r"An officer closes (c-\S+) as confirmed misuse .*? entries (\d+)-(\d+) of", vault)
    assert decided and int(decided[3]) == int(decided[2]) + 1
    # Every imported record's creation is audited, and the reads, refusals and erasure after them.
    verified = re.search(r"`custodes audit verify`: verifies \(([\d,]+) entries, (\d+) signed checkpoints\)", vault)
    assert verified and int(verified[1].replace(",", "")) > int(imported[1].replace(",", ""))
    edited = re.search(r"A copy with entry (\d+) edited .*? does not verify at position (\d+)", vault)
    assert edited and edited[1] == edited[2]
    assert (tmp_path / "demo" / "demo-accounts.json").stat().st_mode & 0o777 == 0o600
    refused = custodes("demo", "--data-dir", str(EVENTS), data_dir=tmp_path)  # not a demo folder
    assert refused.returncode == 1 and "is not a demo directory" in refused.stderr


def test_simulate_writes_a_hospital_that_ingests_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "hospital"
    made = custodes(
        "simulate", "--out", str(out), "--seed", "5", "--days", "2", "--json", data_dir=tmp_path
    )
    assert made.returncode == 0, made.stderr
    counts = last_json(made.stdout)
    assert counts["access_events"] > 1000 and counts["misuse_events"] > 0
    context = custodes(
        "ingest",
        "context",
        *map(str, sorted((out / "context").glob("*.ndjson"))),
        "--json",
        data_dir=tmp_path,
    )
    assert last_json(context.stdout)["quarantined"] == 0
    events = custodes(
        "ingest",
        "events",
        str(out / "events.ndjson"),
        str(out / "signins.ndjson"),
        "--json",
        data_dir=tmp_path,
    )
    assert last_json(events.stdout) == {
        "read": counts["access_events"] + counts["signin_events"],
        "accepted": counts["access_events"] + counts["signin_events"],
        "quarantined": 0,
        "duplicates": 0,
    }


def test_simulate_rejects_a_bad_rate_in_one_line(tmp_path: Path) -> None:
    result = custodes(
        "simulate", "--out", str(tmp_path / "h"), "--rate", "nope=1", data_dir=tmp_path
    )
    assert result.returncode == 1 and result.stderr.startswith("error: unknown scenario(s) nope")
    assert len(result.stderr.strip().splitlines()) == 1
