"""``custodes demo``: the newcomer's first five minutes, on a simulated hospital.

It builds a fresh data directory, simulates a small hospital for a week (staff,
patients, encounters, care teams, and access logs with labelled misuse), ingests its
context and its EHR audit log, shows that damaged lines are quarantined rather than
lost and that nothing is stored twice, imports the Synthea sample to show real FHIR
exports read the same way, and queries the archive. Later capabilities add their step:
detection, signing in, and the record vault (a sealed record, three policy decisions,
the audit chain verified, and a tampered copy caught at the entry that was edited).
"""

from __future__ import annotations

import csv
import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from rich.console import Console
from rich.table import Table

from custodes.bootstrap import Custodes, Settings
from custodes.core.clock import FixedClock
from custodes.core.errors import ConfigurationError
from custodes.detect.batch import detect_log, write_scores
from custodes.detect.evaluate import evaluate, read_labels, read_scores
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files
from custodes.simulate.run import run_preset
from custodes.storage.sql_context import SqlIngestRuns

MARKER = ".custodes-demo"
BUNDLED_SAMPLE = Path(__file__).parent / "samples" / "synthea"
_EPIC_METRICS = (
    "Chart Review Encounter Tab",
    "Results Review",
    "Report Printed",
    "Patient Lookup Search",
)


def find_sample_dir() -> tuple[Path, str]:
    """The Synthea sample to import, and a word on where it came from."""
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


def write_epic_export(events_csv: Path, out: Path, rows: int = 40) -> Path:
    """An Epic-style export of the first accesses, in local time, with three damaged lines.

    The damaged lines (an impossible date, a missing user, a cut-off row) must end in
    the quarantine with their reasons, and the good lines must all be read.
    """
    local = ZoneInfo("America/New_York")
    with open(events_csv, newline="") as source, open(out, "w", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.writer(target)
        writer.writerow(["ACCESS_INSTANT", "USER_ID", "PAT_ID", "METRIC_NAME", "WORKSTATION_ID"])
        first = None
        for number, row in enumerate(reader):
            if number >= rows:
                break
            when = datetime.fromisoformat(row["time"].replace("Z", "+00:00")).astimezone(local)
            metric = _EPIC_METRICS[number % len(_EPIC_METRICS)]
            writer.writerow(
                [
                    when.strftime("%Y-%m-%d %H:%M:%S"),
                    row["user_id"],
                    row["patient_id"],
                    metric,
                    row["workstation"],
                ]
            )
            first = first or row
        assert first is not None
        writer.writerow(
            ["31/02/2026 25:61", first["user_id"], first["patient_id"], "Results Review", "WS-101"]
        )
        writer.writerow(
            ["2026-03-02 10:00:00", "", first["patient_id"], "Results Review", "WS-101"]
        )
        target.write("2026-03-02 10:05:00,only-three,fields\n")
    return out


def run_demo(data_dir: Path | None, *, seed: int = 7, console: Console | None = None) -> Path:
    console = console or Console()
    root = _fresh_dir(Path(data_dir) if data_dir else Path.cwd() / "custodes-demo")
    # The demo's clock is fixed, so two runs with the same seed record the same run times.
    clock = FixedClock(datetime(2026, 3, 9, 9, tzinfo=UTC))
    custodes = Custodes(Settings(data_dir=root, database_url=None), clock=clock)
    console.rule("[bold]Custodes demo")
    console.print(f"Data directory: {root}")

    console.print("1. Simulating a hospital for a week: staff, patients, encounters, care teams,")
    console.print(f"   and the EHR's audit log, with misuse planted and labelled (seed {seed})")
    hospital = root / "hospital"
    summary = run_preset("small", seed, hospital)
    counts = summary.data["counts"]
    legitimate = summary.data["legitimate"]
    console.print(
        f"   {counts['staff']} staff, {counts['patients']:,} patients, {counts['encounters']:,} encounters; "
        f"{summary.access_events:,} accesses and {summary.signin_events:,} sign-ins"
    )
    console.print(
        f"   {legitimate['without_care_team_link_share']:.0%} of legitimate accesses have no care-team link "
        "but a real reason (covering, consults, float nurses, billing, ...);"
    )
    console.print(
        f"   {summary.misuse_events:,} accesses are misuse, labelled by scenario in {hospital.name}/labels.csv"
    )

    console.print(
        "2. Ingesting the hospital's context (FHIR Practitioner, Patient, Encounter, CareTeam, ...)"
    )
    context = custodes.ingest_context(sorted((hospital / "context").glob("*.ndjson"))).report
    console.print(
        f"   {context.stored['staff']} staff, {context.stored['patients']:,} patients, "
        f"{context.stored['encounters']:,} encounters, {context.stored['related_persons']:,} relations, "
        f"{context.quarantined} quarantined"
    )

    console.print("3. Ingesting the audit log: FHIR AuditEvents (accesses and sign-ins)")
    logs = custodes.ingest_events([hospital / "events.ndjson", hospital / "signins.ndjson"]).report
    console.print(
        f"   {logs.read:,} read: {logs.access_events:,} accesses and {logs.signin_events:,} sign-ins "
        f"accepted, {logs.quarantined} quarantined"
    )

    console.print(
        "4. An Epic-style CSV export with three damaged lines: kept in the quarantine, with reasons"
    )
    epic_path = write_epic_export(hospital / "events.csv", root / "epic-access.csv")
    epic_run = custodes.ingest_events([epic_path], mapping=Path("epic"))
    epic = epic_run.report
    console.print(
        f"   {epic.read:,} read, {epic.accepted:,} accepted, {epic.quarantined} quarantined:"
    )
    table = Table("file", "line", "reason")
    for row in SqlIngestRuns(custodes.ready_engine()).quarantined(epic_run.run_id):
        table.add_row(row["source_file"], str(row["line"]), row["reason"])
    console.print(table)

    console.print("5. Ingesting the audit log again: nothing is stored twice")
    again = custodes.ingest_events([hospital / "events.ndjson"]).report
    console.print(
        f"   {again.read:,} read, {again.duplicates:,} duplicates, {again.accepted - again.duplicates} new"
    )

    sample_dir, sample_note = find_sample_dir()
    sample_files = sorted(sample_dir.glob("*.json*"))
    console.print(
        f"6. Real FHIR exports read the same way: importing {sample_note} ({len(sample_files)} Bundles)"
    )
    synthea = custodes.ingest_context(sample_files).report
    console.print(
        f"   {synthea.stored['patients']} patients, {synthea.stored['encounters']:,} encounters, "
        f"{synthea.stored['staff']} practitioners; {synthea.skipped:,} clinical resources skipped (not context)"
    )

    console.print(
        "7. The Parquet archive answers questions with DuckDB: who opened the most charts?"
    )
    top = duckdb.execute(
        "SELECT a.user_id, count(*) AS accesses, count(DISTINCT a.patient_id) AS patients, "
        "sum(CASE WHEN hour(a.time AT TIME ZONE 'UTC') < 6 THEN 1 ELSE 0 END) AS night, "
        "sum(l.label) AS misuse "
        "FROM read_parquet(?, hive_partitioning = true) a "
        "LEFT JOIN read_csv(?, header = true, columns = {'event_id': 'VARCHAR', 'label': 'INTEGER', "
        "'scenario': 'VARCHAR', 'case_id': 'VARCHAR'}) l USING (event_id) "
        "GROUP BY a.user_id ORDER BY patients DESC, accesses DESC LIMIT 5",
        [custodes.archive.access_glob, str(hospital / "labels.csv")],
    ).fetchall()
    table = Table("user", "accesses", "patients", "00:00-06:00 UTC", "labelled misuse")
    for user, count, distinct, night, misuse in top:
        table.add_row(user, f"{count:,}", f"{distinct:,}", f"{night:,}", f"{misuse or 0:,}")
    console.print(table)
    flagged = sum(1 for *_, misuse in top if misuse)
    console.print(
        f"   {flagged} of these {len(top)} carry planted misuse and the rest are staff doing their "
        "jobs: volume alone is no proof, so the detectors weigh relationships and context."
    )

    console.print(
        "8. Detection: every access scored 0-100 against the context, explained or flagged, "
        "with reasons"
    )
    scored = _detect_step(hospital, root, console)
    _case_queue_step(custodes, *scored, console)
    _sign_in_step(custodes, root, console)
    _vault_step(custodes, hospital, console)
    console.print(
        "Next: `custodes simulate --preset hospital --out DIR` for a month of a larger hospital, "
        "`custodes ingest events FILE` for your own logs (--mapping epic for Epic exports), "
        "`custodes detect --events FILE --context DIR --scores-out FILE` to score them, "
        "`custodes eval --labels FILE --scores FILE` to measure against labels."
    )
    return root


def _detect_step(hospital: Path, root: Path, console: Console) -> tuple:
    """Score the simulated week, show the top alerts, and measure them against the labels."""
    context, _ = read_context_folder(hospital / "context")
    log = read_event_files([hospital / "events.ndjson"])
    result = detect_log(log.access, context)
    scores_path = root / "scores.csv"
    write_scores(result.scores, scores_path)
    scores = result.scores
    console.print(
        f"   {scores.height:,} accesses scored in {result.fit_seconds + result.score_seconds:.1f} s; "
        f"{scores['explained'].mean():.1%} explained by a documented reason "
        f"(care team, department visit, charting, continuing care, ...); scores in {scores_path.name}"
    )
    labels = read_labels(hospital / "labels.csv")
    evaluation = evaluate(labels, read_scores(scores_path), budgets=(10,))
    budget = evaluation.at_budget(10)
    top = (
        scores.join(labels.select("event_id", "scenario"), on="event_id", how="left")
        .sort(["score", "event_id"], descending=[True, False])
        .unique("reasons", keep="first", maintain_order=True)
        .head(6)
    )
    table = Table("score", "user", "patient", "why", "planted scenario", show_lines=True)
    users = log.access.select("event_id", "user_id", "patient_id")
    for row in top.join(users, on="event_id", how="left", maintain_order="left").iter_rows(
        named=True
    ):
        table.add_row(
            f"{row['score']:.0f}",
            row["user_id"],
            row["patient_id"],
            row["reasons"],
            row["scenario"] or "(legitimate)",
        )
    console.print(table)
    if budget is not None:
        console.print(
            f"   Against the planted labels: ROC AUC {evaluation.roc_auc:.3f}; with a budget of 10 "
            f"alerts per 10,000 accesses ({budget.alerts} alerts), {budget.precision:.0%} are real "
            f"misuse and {budget.incident_recall:.0%} of the {evaluation.incidents} incidents are "
            "caught. This week is dense with misuse on purpose (5% of accesses; see docs/detection.md)."
        )
    return result.scores, log.access, context


def _case_queue_step(custodes: Custodes, scores, events, context, console: Console) -> None:
    """Store the alerts at the budget, correlate them into cases, show the queue."""
    from custodes.correlate.alerts import DEFAULT_BUDGET, budget_threshold

    threshold = budget_threshold(scores["score"], DEFAULT_BUDGET)
    departments = context.staff.select("user_id", department="user_department")
    report = custodes.record_alerts(scores, events, threshold, departments)
    cases = custodes.case_book().queue(limit=8)
    console.print(
        f"9. Cases: {report.new_alerts} alerts (budget {DEFAULT_BUDGET:g} per 10,000 accesses, "
        f"score >= {threshold:.0f}) grouped into {report.cases_touched} cases: each user's "
        "alerts while they come within an hour of each other, and each record opened by "
        "several users within a day; most severe first"
    )
    patient_cases = [c for c in custodes.case_book().queue(limit=1000) if c.subject == "patient"]
    shown = cases + [c for c in patient_cases[:2] if c not in cases]
    for case in shown:
        console.print(
            f"   {case.severity:<8} {case.kind:<21} {case.case_id}  {case.subject_text}: "
            f"{case.alert_count} alert(s), {case.patient_count} patient(s)",
            highlight=False,
            markup=False,
        )
        reason = next((line for line in case.story if line.startswith("reason: ")), "")
        console.print(
            f"            {textwrap.shorten(reason[8:], width=64, placeholder=' ...')}",
            highlight=False,
            markup=False,
        )
    _officer_decides(custodes, cases, console)
    console.print(
        f"   Work them with `custodes --data-dir {custodes.settings.data_dir} cases list`, "
        "`cases show ID`, `cases close ID --verdict confirmed_misuse|false_positive|"
        "justified_access`; verdicts train the ranker on the next `custodes detect`.",
        highlight=False,
    )


def _officer_decides(custodes: Custodes, cases: list, console: Console) -> None:
    """A privacy officer closes the top case and silences a user for a shift: both
    decisions land in the hash-chained audit log (without the note's or reason's text)."""
    from datetime import timedelta

    from custodes.core.cases import SuppressionScope, Verdict

    if not cases:
        return
    book = custodes.case_book()
    top = cases[0]
    before = custodes.audit_store.count()
    book.close(
        top.case_id, Verdict.CONFIRMED_MISUSE, "demo-officer",
        note="confirmed with the user's manager",
    )  # fmt: skip
    covering = next(
        (c.user_id for c in cases if c.subject == "user" and c.user_id != top.user_id),
        top.user_id,
    )
    made = book.suppress(
        SuppressionScope.USER, covering, "covering another ward tonight", "demo-officer",
        timedelta(hours=12),
    )  # fmt: skip
    console.print(
        f"   An officer closes {top.case_id} as confirmed misuse and silences {covering}'s "
        f"alerts for 12 h ({made.suppression_id}); both decisions are entries "
        f"{before}-{custodes.audit_store.count() - 1} of the audit log.",
        highlight=False,
        markup=False,
    )


# -- Signing in (identity) -----------------------------------------------------------
DEMO_ACCOUNTS = (
    ("priya", "privacy_officer", "lantern orchard quietly ninety"),
    ("sam", "administrator", "velvet harbour mosaic sixteen"),
)


def _sign_in_step(custodes: Custodes, root: Path, console: Console) -> None:
    """Demo accounts with passwords and TOTP, and how to sign in to the API with them."""
    import json
    import os

    from custodes.identity.totp import Totp

    accounts = []
    for name, role, password in DEMO_ACCOUNTS:
        custodes.identity.add_user(name, role, password)
        enrolment = custodes.identity.enroll_totp(name)
        accounts.append(
            {
                "name": name,
                "role": role,
                "password": password,
                "totp_secret": enrolment.secret,
                "otpauth_uri": enrolment.uri,
                "recovery_codes": list(enrolment.recovery.codes),
            }
        )
    path = root / "demo-accounts.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(accounts, handle, indent=2)
    first = accounts[0]
    # The code for the real time now (the demo's own clock is fixed for replays).
    code = Totp(first["totp_secret"]).code_at(datetime.now(UTC))
    who = ", ".join(f"{name} ({role})" for name, role, _ in DEMO_ACCOUNTS)
    console.print(
        f"10. Signing in: two demo accounts with Argon2id passwords and TOTP ({who}); "
        f"passwords, TOTP secrets and recovery codes in {path.name} (mode 0600)"
    )
    console.print(f"   Start the API:  custodes --data-dir {root} serve", highlight=False)
    body = json.dumps({"username": first["name"], "password": first["password"], "totp": code})
    console.print(
        "   Sign in:        curl -si -X POST http://127.0.0.1:8000/auth/login "
        f"-H 'content-type: application/json' -d '{body}'",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"   {code} is {first['name']}'s code right now; it changes every 30 seconds. Add "
        f"the otpauth URI in {path.name} to an authenticator app, or compute it: "
        '.venv/bin/python -c "import json, pyotp; '
        f"print(pyotp.TOTP(json.load(open('{path}'))[0]['totp_secret']).now())\"",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        "   Passkeys (Touch ID, Windows Hello, Android) after signing in: "
        "http://localhost:8000/auth/passkeys",
        highlight=False,
    )


# -- The record vault: envelope encryption, access policy, the audit chain -----------------
def _vault_step(custodes: Custodes, hospital: Path, console: Console) -> None:
    """Import the hospital's records into the vault, read them as four staff, then show
    the audit log verifying, and a tampered copy failing where it was edited."""
    import time
    from collections import Counter
    from dataclasses import replace as _replace
    from datetime import timedelta

    import orjson

    from custodes.access import BreakGlass
    from custodes.audit import AuditEntry, AuditLog, MemoryAuditStore
    from custodes.core.accounts import Role
    from custodes.vault.errors import VaultError
    from custodes.vault.resources import transaction_bundle
    from custodes.vault.service import Requester, plan_transaction

    vault = custodes.vault
    operator = Requester("demo-admin", Role.ADMINISTRATOR, step_up_fresh=True)
    tiers: Counter[str] = Counter()
    records: dict[str, list[dict]] = {}
    started = time.perf_counter()
    for name in ("organizations", "practitioners", "patients", "encounters"):
        lines = [orjson.loads(line) for line in (hospital / "context" / f"{name}.ndjson").read_bytes().splitlines()]
        records[name] = lines
        for at in range(0, len(lines), 1000):
            plans = plan_transaction(transaction_bundle(lines[at : at + 1000]))
            vault.commit_transaction(operator, plans)
            tiers.update(str(plan.tier) for plan in plans)
    seconds = time.perf_counter() - started
    console.print(
        f"11. The record vault: the hospital's {sum(tiers.values()):,} FHIR records imported as transactions "
        f"in {seconds:.1f} s, each sealed under its own data key (AES-256-GCM), wrapped by the patient's key "
        f"(a key of its own when sensitive), wrapped by keyring v{custodes.key_service.current_version()}: "
        f"{tiers['standard']:,} standard, {tiers['sensitive']:,} sensitive, "
        f"{tiers['organisational']:,} organisational. Staff ask for records; the policy decides:"
    )
    sensitive = {
        p["id"] for p in records["patients"] if p["resourceType"] == "Patient" and (p.get("meta") or {}).get("security")
    }
    visits = [e for e in records["encounters"] if e["resourceType"] == "Encounter" and e.get("participant")]
    visit = next(e for e in visits if e["subject"]["reference"].removeprefix("Patient/") not in sensitive)
    patient_id = visit["subject"]["reference"].removeprefix("Patient/")
    attending = visit["participant"][0]["individual"]["reference"].removeprefix("Practitioner/")
    stranger = next(
        e["participant"][0]["individual"]["reference"].removeprefix("Practitioner/") for e in visits
        if e["participant"][0]["individual"]["reference"] != visit["participant"][0]["individual"]["reference"]
    )  # fmt: skip
    now = custodes.clock.now()
    glass = BreakGlass("patient unconscious in the ED, no chart available", now, now + timedelta(hours=1))
    asks = [
        (Requester(attending, Role.CLINICIAN), "Encounter", visit["id"], "the attending"),
        (Requester("fd-demo", Role.FRONT_DESK), "Encounter", visit["id"], "front desk"),
        (Requester(stranger, Role.CLINICIAN), "Encounter", visit["id"], "another clinician"),
        (Requester(stranger, Role.CLINICIAN, break_glass=glass, purpose_of_use="ETREAT"), "Encounter", visit["id"],
         "the same, breaking the glass"),
    ]  # fmt: skip
    sensitive_visit = next((e for e in visits if e["subject"]["reference"].removeprefix("Patient/") in sensitive), None)
    if sensitive_visit is not None:
        carer = sensitive_visit["participant"][0]["individual"]["reference"].removeprefix("Practitioner/")
        psy = sensitive_visit["subject"]["reference"].removeprefix("Patient/")
        asks += [
            (Requester(carer, Role.CLINICIAN), "Patient", psy, "a clinician, at a sensitive chart"),
            (Requester(carer, Role.CLINICIAN, step_up_fresh=True), "Patient", psy, "the same, after a passkey check"),
        ]
    for who, resource_type, record_id, label in asks:
        try:
            vault.read(who, resource_type, record_id)
            outcome = "allowed" + ("; queued for a privacy officer's review" if who.break_glass else "")
        except VaultError as refusal:
            outcome = f"denied: {refusal}"
        console.print(f"   {who.user_id} ({label}) reads {resource_type}/{record_id}: {outcome}", highlight=False)
    mrn = next(p for p in records["patients"] if p.get("id") == patient_id)["identifier"][0]["value"]
    found = vault.search(Requester("fd-demo", Role.FRONT_DESK), "Patient", identifier=mrn).resources
    console.print(
        f"   The front desk finds Patient/{patient_id} by MRN through a blind index (a keyed digest, no "
        f"decryption) and sees only {', '.join(sorted(k for k in found[0] if k not in ('meta', 'resourceType')))}"
        if found else "   The front desk's search by MRN found nothing",
        highlight=False,
    )
    erased = vault.erase_patient(operator, patient_id)
    console.print(
        f"   Erasing Patient/{patient_id}: {erased['keys_destroyed']} key(s) destroyed, "
        f"{erased['versions_erased']} record version(s) gone; no copy anywhere can be decrypted once the "
        "key version that wrapped them is retired (`custodes keys rotate`)",
        highlight=False,
    )

    log = custodes.audit_log
    log.checkpoint()
    public = custodes.audit_signing_key().public_key()
    report = log.verify(public)
    console.print(
        f"   Every import, read, refusal and erasure is in the hash-chained audit log, signed (Ed25519) at "
        f"checkpoints. `custodes audit verify`: {'verifies' if report.ok else 'FAILS'} ({report.entries:,} "
        f"entries, {report.checkpoints} signed checkpoints)"
    )
    store = custodes.audit_store
    copy = MemoryAuditStore(store.read(), store.checkpoints())
    denied = next(
        i for i, row in enumerate(copy.entries)
        if (e := AuditEntry.from_body(row.body)).actor == "fd-demo" and not e.allowed
    )  # fmt: skip
    victim = copy.entries[denied]
    copy.entries[denied] = _replace(victim, body=victim.body.replace(b'"allowed":false', b'"allowed":true'))
    tampered = AuditLog(copy, custodes.clock, custodes.audit_signing_key()).verify(public)
    console.print(
        f"   A copy with entry {denied} edited (the front desk's denial turned into an allowed read): "
        f"{'verifies' if tampered.ok else 'does not verify'} at position {tampered.first_bad}: "
        f"{tampered.problem}",
        highlight=False,
    )
