"""Ingest rate: FHIR AuditEvent NDJSON and CSV into the Parquet archive (and PostgreSQL).

Generates a seeded access log (IHE BALP AuditEvents, about 1 KB each, and the same
events as canonical CSV), then times the full path: parse, validate, normalise,
deduplicate, write. Peak memory is read from the operating system for two file sizes,
to show it stays flat as the file grows. The PostgreSQL figure needs the server at
127.0.0.1:5432 (database ``test``); it is skipped with a note when it does not answer.

Run: ``make bench`` or ``.venv/bin/python benchmarks/ingest_rate.py --events 1000000``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from custodes.core.events import AccessEvent, Action
from custodes.ingest.fhir_audit import audit_event_resource

OUT = Path(__file__).parent / "out"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_ACTIONS = [Action.READ] * 8 + [Action.SEARCH, Action.UPDATE, Action.PRINT]
_RESOURCES = ["Observation", "Encounter", "MedicationRequest", "DiagnosticReport", "Condition"]


def generate(count: int, seed: int) -> tuple[Path, Path]:
    """Write ``count`` events as NDJSON and CSV (cached by count and seed)."""
    OUT.mkdir(exist_ok=True)
    ndjson, table = OUT / f"events-{count}-{seed}.ndjson", OUT / f"events-{count}-{seed}.csv"
    if ndjson.exists() and table.exists():
        return ndjson, table
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    with open(ndjson, "wb") as fj, open(table, "w", newline="") as fc:
        writer = csv.writer(fc)
        writer.writerow(["event_id", "time", "user_id", "patient_id", "action", "resource_type", "resource_id",
                         "application", "workstation", "source_ip", "outcome", "purpose_of_use", "session_id"])  # fmt: skip
        for i in range(count):
            rtype = rng.choice(_RESOURCES)
            event = AccessEvent(
                event_id=f"ae-{seed}-{i}",
                time=start + timedelta(seconds=i * 2.6 + rng.random()),
                user_id=f"u{rng.randrange(4000)}",
                patient_id=f"p{rng.randrange(200000)}",
                action=rng.choice(_ACTIONS),
                resource_type=rtype,
                resource_id=f"{rtype[:3].lower()}{rng.randrange(10**7)}",
                application="EHR",
                workstation=f"WS-{rng.randrange(2000)}",
                source_ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                purpose_of_use="ETREAT" if rng.random() < 0.002 else "TREAT",
            )
            fj.write(orjson.dumps(audit_event_resource(event)) + b"\n")
            row = event.to_row()
            row["time"] = event.time.isoformat()
            writer.writerow([row[c] for c in ("event_id", "time", "user_id", "patient_id", "action", "resource_type",
                             "resource_id", "application", "workstation", "source_ip", "outcome",
                             "purpose_of_use", "session_id")])  # fmt: skip
    return ndjson, table


def run_once(path: Path, fmt: str, stores: str, workers: int, database_url: str | None) -> dict:
    """One ingest in a fresh process, so peak memory is this run's alone."""
    data_dir = OUT / f"data-{fmt}-{stores.replace(',', '-')}-{workers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {
        **os.environ,
        "CUSTODES_DATA_DIR": str(data_dir),
        "CUSTODES_EVENT_STORES": json.dumps(stores.split(",")),
    }
    if database_url:
        env["CUSTODES_DATABASE_URL"] = database_url
    code = (
        "import json, resource, sys, time\n"
        "from pathlib import Path\n"
        "from custodes.bootstrap import Custodes, Settings\n"
        "if __name__ == '__main__':\n"
        "    app = Custodes(Settings())\n"
        "    app.ready_engine()\n"
        "    t = time.perf_counter()\n"
        f"    run = app.ingest_events([Path({str(path)!r})], fmt={fmt!r}, workers={workers})\n"
        "    seconds = time.perf_counter() - t\n"
        "    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    print(json.dumps({'seconds': seconds, 'accepted': run.report.accepted, 'rss_mb': me / 1024,\n"
        "                      'worker_rss_mb': kids / 1024}))\n"
    )
    script = OUT / "_run.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({fmt}, {stores}):\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["rate"] = result["accepted"] / result["seconds"]
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


def postgres_url() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS bench CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA bench"))
    return POSTGRES + "?options=-csearch_path%3Dbench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=1,
        help="CSV parser processes (CUSTODES_INGEST_WORKERS; 1, the default, reads in-process)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown")
    args = parser.parse_args()
    small = max(1, args.events // 4)
    big_json, big_csv = generate(args.events, args.seed)
    small_json, small_csv = generate(small, args.seed)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"file: {args.events:,} events, NDJSON {big_json.stat().st_size / 1e6:.0f} MB, "
          f"CSV {big_csv.stat().st_size / 1e6:.0f} MB")  # fmt: skip
    rows = []
    for label, path, fmt, stores, workers, url in [
        ("FHIR NDJSON -> Parquet", big_json, "fhir", "archive", args.workers, None),
        (
            f"FHIR NDJSON -> Parquet ({small:,} events)",
            small_json,
            "fhir",
            "archive",
            args.workers,
            None,
        ),
        ("CSV -> Parquet", big_csv, "csv", "archive", args.workers, None),
        (f"CSV -> Parquet ({small:,} events)", small_csv, "csv", "archive", args.workers, None),
        (
            "FHIR NDJSON -> archive + SQLite (defaults)",
            big_json,
            "fhir",
            "archive,database",
            args.workers,
            None,
        ),
        ("FHIR NDJSON -> PostgreSQL", big_json, "fhir", "database", args.workers, "pg"),
        ("CSV -> PostgreSQL", big_csv, "csv", "database", args.workers, "pg"),
    ]:
        if url == "pg":
            url = postgres_url()
            if url is None:
                print(f"{label}: skipped, PostgreSQL is not running on 127.0.0.1:5432")
                continue
        runs = sorted(
            (run_once(path, fmt, stores, workers, url) for _ in range(args.repeat)),
            key=lambda r: r["rate"],
        )
        result = runs[len(runs) // 2]
        rows.append((label, result))
        print(
            f"{label:45s} {result['rate']:>10,.0f} events/s (median of {len(runs)}: "
            f"{runs[0]['rate']:,.0f}-{runs[-1]['rate']:,.0f})  {result['seconds']:6.2f} s  "
            f"peak RSS {result['rss_mb']:.0f} MB main, {result['worker_rss_mb']:.0f} MB worker"
        )


if __name__ == "__main__":
    main()
