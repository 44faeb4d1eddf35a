"""``custodes demo``: the newcomer's first five minutes, on a small simulated hospital.

It builds a fresh data directory, loads the hospital's context (the Synthea sample in
``../shared/data/synthea-r4`` when it is there, else three bundled patients), writes
the access logs the hospital's EHR would export (FHIR AuditEvents and an Epic-style
CSV with a few damaged lines), ingests them, and shows what happened: counts, the
quarantine with its reasons, idempotent re-ingestion, and a query over the archive.
Later capabilities add their step here.
"""

from __future__ import annotations

import csv
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
from rich.console import Console
from rich.table import Table

from custodes.bootstrap import Custodes, Settings
from custodes.core.clock import FixedClock
from custodes.core.errors import ConfigurationError
from custodes.core.events import AccessEvent, Action, SignInEvent, SignInKind
from custodes.ingest.context_service import read_context_file
from custodes.ingest.fhir_audit import audit_event_resource, signin_audit_event_resource

MARKER = ".custodes-demo"
BUNDLED_SAMPLE = Path(__file__).parent / "samples" / "synthea"
_RESOURCES = (
    "Observation",
    "Condition",
    "MedicationRequest",
    "DiagnosticReport",
    "Encounter",
    "Patient",
)
_EPIC_METRICS = (
    ("Chart Review Encounter Tab", "read"),
    ("Results Review", "read"),
    ("Patient Lookup Search", "search"),
    ("Report Printed", "print"),
    ("Progress Note Signed", "update"),
)


def find_sample_dir() -> tuple[Path, str]:
    """The Synthea sample to load, and a word on where it came from."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base.parent / "shared" / "data" / "synthea-r4"
        if candidate.is_dir() and any(candidate.glob("*.json*")):
            return candidate, "the Synthea sample in ../shared"
    return BUNDLED_SAMPLE, "the three bundled Synthea patients"


def _fresh_dir(path: Path) -> Path:
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise ConfigurationError(
                f"{path} exists and is not a demo directory; choose an empty or new --data-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    (path / MARKER).write_text("created by custodes demo; safe to delete\n")
    return path


def write_sample_logs(sample_files: list[Path], inbox: Path, seed: int) -> dict[str, Path]:
    """Write the EHR's access logs for the sample hospital; return the files by kind.

    Every encounter's attending clinician opens the chart a few times during the stay;
    a few accesses come from clinicians with no encounter at night, and the Epic-style
    export carries three damaged lines that must end in the quarantine.
    """
    rng = random.Random(seed)
    encounters, staff_ids = [], set()
    for path in sample_files:
        batch = read_context_file(path)
        encounters.extend(e for e in batch.encounters if e.attending_id)
        staff_ids.update(s.staff_id for s in batch.staff)
    encounters.sort(key=lambda e: (e.patient_id, e.start))
    staff = sorted(staff_ids | {e.attending_id for e in encounters if e.attending_id})
    accesses: list[AccessEvent] = []
    signins: list[SignInEvent] = []
    # The last few encounters of each patient: enough to read, quick to ingest.
    recent: dict[str, list] = {}
    for encounter in encounters:
        recent.setdefault(encounter.patient_id, []).append(encounter)
    chosen = [e for visits in recent.values() for e in visits[-6:]]
    for number, encounter in enumerate(chosen):
        user = encounter.attending_id
        start = encounter.start.astimezone(UTC)
        end = (encounter.end or start + timedelta(hours=1)).astimezone(UTC)
        span = max(60, int((end - start).total_seconds()))
        ip = f"10.20.{rng.randrange(1, 40)}.{rng.randrange(2, 250)}"
        signins.append(
            SignInEvent(
                f"demo-login-{number}",
                start - timedelta(minutes=3),
                user,
                SignInKind.LOGIN,
                source_ip=ip,
                application="EHR",
            )
        )
        for k in range(rng.randint(2, 6)):
            accesses.append(
                AccessEvent(
                    event_id=f"demo-{number}-{k}",
                    time=start + timedelta(seconds=rng.randrange(span)),
                    user_id=user,
                    patient_id=encounter.patient_id,
                    action=Action.READ if k else Action.SEARCH,
                    resource_type=rng.choice(_RESOURCES),
                    resource_id=f"r{number}-{k}",
                    application="EHR",
                    workstation=f"WS-{rng.randrange(100, 140)}",
                    source_ip=ip,
                    purpose_of_use="TREAT",
                )
            )  # fmt: skip
    # A handful of accesses without a care relationship, at night, one under break-the-glass.
    patients = sorted(recent)
    for k in range(5):
        patient = rng.choice(patients)
        outsiders = [s for s in staff if all(e.attending_id != s for e in recent[patient])] or staff
        visit = rng.choice(recent[patient])
        at = visit.start.astimezone(UTC).replace(hour=2, minute=rng.randrange(60)) + timedelta(
            days=1
        )
        accesses.append(
            AccessEvent(
                event_id=f"demo-night-{k}", time=at, user_id=rng.choice(outsiders), patient_id=patient,
                action=Action.PRINT if k == 4 else Action.READ, resource_type="Patient", resource_id=patient,
                application="EHR", workstation="WS-999", source_ip="10.99.0.7",
                purpose_of_use="ETREAT" if k == 0 else "TREAT",
            )
        )  # fmt: skip
    inbox.mkdir(parents=True, exist_ok=True)
    fhir_path = inbox / "ehr-audit.ndjson"
    records = sorted(
        [(a.time, audit_event_resource(a)) for a in accesses]
        + [(s.time, signin_audit_event_resource(s)) for s in signins],
        key=lambda pair: pair[0],
    )
    with open(fhir_path, "wb") as handle:
        handle.writelines(orjson.dumps(resource) + b"\n" for _, resource in records)
    # The same hospital's Epic export covers a sample of the accesses, in local time.
    local = ZoneInfo("America/New_York")
    epic_path = inbox / "epic-access.csv"
    with open(epic_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ACCESS_INSTANT", "USER_ID", "PAT_ID", "METRIC_NAME", "WORKSTATION_ID"])
        for access in rng.sample(accesses, min(40, len(accesses))):
            metric = rng.choice(_EPIC_METRICS)[0]
            when = access.time.astimezone(local).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow([when, access.user_id, access.patient_id, metric, access.workstation])
        victim = accesses[0]
        writer.writerow(
            ["31/02/2020 25:61", victim.user_id, victim.patient_id, "Results Review", "WS-101"]
        )
        writer.writerow(["2020-03-01 10:00:00", "", victim.patient_id, "Results Review", "WS-101"])
        handle.write("2020-03-01 10:05:00,only-three,fields\n")
    return {"fhir": fhir_path, "epic": epic_path}


def run_demo(data_dir: Path | None, *, seed: int = 7, console: Console | None = None) -> Path:
    console = console or Console()
    root = _fresh_dir(Path(data_dir) if data_dir else Path.cwd() / "custodes-demo")
    sample_dir, sample_note = find_sample_dir()
    sample_files = sorted(sample_dir.glob("*.json*"))
    # The demo's clock is fixed, so two runs with the same seed record the same run times.
    custodes = Custodes(
        Settings(data_dir=root, database_url=None),
        clock=FixedClock(datetime(2026, 1, 5, 9, tzinfo=UTC)),
    )
    console.rule("[bold]Custodes demo")
    console.print(f"Data directory: {root}")
    console.print(
        f"1. Loading the hospital's context from {sample_note} ({len(sample_files)} files)"
    )
    context = custodes.ingest_context(sample_files).report
    console.print(
        f"   {context.stored['patients']} patients, {context.stored['encounters']} encounters, "
        f"{context.stored['staff']} staff, {context.stored['departments']} departments "
        f"({context.skipped:,} clinical resources skipped: not context)"
    )
    console.print("2. Writing the EHR's access logs: FHIR AuditEvents and an Epic-style CSV export")
    logs = write_sample_logs(sample_files, root / "inbox", seed)
    fhir = custodes.ingest_events([logs["fhir"]], workers=1).report
    console.print(
        f"   {logs['fhir'].name}: {fhir.read:,} read, {fhir.access_events:,} accesses and "
        f"{fhir.signin_events:,} sign-ins accepted, {fhir.quarantined} quarantined"
    )
    epic_run = custodes.ingest_events([logs["epic"]], mapping=Path("epic"), workers=1)
    epic = epic_run.report
    console.print(
        f"   {logs['epic'].name}: {epic.read:,} read, {epic.accepted:,} accepted, "
        f"{epic.quarantined} quarantined (damaged lines, kept with their reasons):"
    )
    from custodes.storage.sql_context import SqlIngestRuns

    table = Table("file", "line", "reason")
    for row in SqlIngestRuns(custodes.ready_engine()).quarantined(epic_run.run_id):
        table.add_row(row["source_file"], str(row["line"]), row["reason"])
    console.print(table)
    console.print("3. Ingesting the AuditEvent file again: nothing is added twice")
    again = custodes.ingest_events([logs["fhir"]], workers=1).report
    console.print(
        f"   {again.read:,} read, {again.duplicates:,} duplicates, {again.accepted - again.duplicates} new"
    )
    console.print(
        "4. The Parquet archive answers questions with DuckDB: who opened the most charts?"
    )
    glob = custodes.archive.access_glob
    top = duckdb.execute(
        "SELECT user_id, count(*) AS accesses, count(DISTINCT patient_id) AS patients, "
        "sum(CASE WHEN hour(time AT TIME ZONE 'UTC') < 6 THEN 1 ELSE 0 END) AS night "
        "FROM read_parquet(?, hive_partitioning = true) "
        "GROUP BY user_id ORDER BY patients DESC, accesses DESC LIMIT 5",
        [glob],
    ).fetchall()
    table = Table("user", "accesses", "patients", "00:00-06:00 UTC")
    for user, count, distinct, night in top:
        table.add_row(user, str(count), str(distinct), str(night))
    console.print(table)
    console.print(
        "Next: `custodes ingest events FILE` for your own logs (--mapping epic for Epic exports), "
        "`custodes ingest quarantine` for what could not be read."
    )
    return root
