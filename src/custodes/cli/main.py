"""``custodes``: the command line.

Errors are one clear line on stderr and a non-zero exit; ``--debug`` shows the
traceback. ``--json`` prints one JSON object as the last line of stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import click
import orjson
import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from custodes import __version__
from custodes.bootstrap import Custodes, Settings
from custodes.cli import cases as _cases
from custodes.cli import evaluate as _evaluate
from custodes.cli import users as _users
from custodes.cli import vault as _vault
from custodes.core.errors import CustodesError, InputFormatError

app = typer.Typer(
    name="custodes",
    help="Custodes guards patient health information: it ingests every access to a patient "
    "record, detects misuse, explains it, and proves HIPAA compliance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(
    help="Read access logs and hospital context into Custodes.", no_args_is_help=True
)
db_app = typer.Typer(help="Manage the relational store.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(db_app, name="db")
_evaluate.register(app)

out = Console()
err = Console(stderr=True)


class _State:
    data_dir: Path | None = None


def _custodes() -> Custodes:
    overrides = {"data_dir": _State.data_dir} if _State.data_dir else {}
    return Custodes(Settings(**overrides))


_users.register(app, _custodes)
_cases.register(app, _custodes)
_vault.register(app, _custodes)


def _version(value: bool) -> None:
    if value:
        out.print(f"custodes {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory (default: $CUSTODES_DATA_DIR or the user data dir)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _State.data_dir = data_dir


@contextmanager
def _progress(enabled: bool) -> Iterator:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not enabled,
    )
    tasks: dict[Path, int] = {}

    def update(path: Path, done: int, total: int) -> None:
        if path not in tasks:
            tasks[path] = bar.add_task(path.name, total=total or None)
        bar.update(tasks[path], completed=done)

    with bar:
        yield update


def _print_counts(
    title: str, counts: dict[str, int], as_json: bool, extra: dict | None = None
) -> None:
    if as_json:
        out.print(orjson.dumps(counts).decode(), soft_wrap=True, highlight=False)
        return
    table = Table(title=title, show_header=False)
    for key, value in {**counts, **(extra or {})}.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    out.print(table)


FilesArg = Annotated[list[Path], typer.Argument(help="Files to read (plain or .gz).", exists=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the counts as one JSON object.")]
BudgetOpt = Annotated[
    float,
    typer.Option("--budget", min=0, help="Alerts per 10,000 accesses: sets the alert threshold."),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold", min=0, max=100, help="Score that counts as an alert (overrides --budget)."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the models' random starts.")]


@ingest_app.command("events")
def ingest_events(
    paths: FilesArg,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Force the format: fhir (AuditEvent NDJSON/Bundle) or csv."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="CSV column mapping file (YAML), or a bundled name: epic."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Parser processes for CSV (default CUSTODES_INGEST_WORKERS, "
            "1: in-process on every core; FHIR uses DuckDB threads)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest access logs: FHIR AuditEvent (NDJSON or Bundle) or CSV.

    Bad lines go to the quarantine with their line number and reason; the command exits
    non-zero only when nothing usable was read.
    """
    custodes = _custodes()
    with _progress(not as_json and err.is_terminal) as progress:
        run = custodes.ingest_events(
            paths, fmt=fmt, mapping=mapping, workers=workers, progress=progress
        )
    report = run.report
    _print_counts(
        "ingested access logs",
        report.as_json(),
        as_json,
        {
            "access events": report.access_events,
            "sign-in events": report.signin_events,
            "run": run.run_id,
        },
    )
    if report.quarantined and not as_json:
        err.print(
            f"{report.quarantined:,} line(s) quarantined; see `custodes ingest quarantine --run {run.run_id}`"
        )
    if report.accepted == 0:
        raise typer.Exit(1)


@ingest_app.command("context")
def ingest_context(
    paths: FilesArg,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Force the format: fhir (NDJSON/Bundle) or csv.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest hospital context: staff, patients, encounters, care teams, relations.

    FHIR Practitioner, PractitionerRole, Patient, RelatedPerson, Encounter, CareTeam and
    Organization (NDJSON or Bundle), or the documented CSVs.
    """
    custodes = _custodes()
    with _progress(not as_json and err.is_terminal) as progress:
        run = custodes.ingest_context(paths, fmt=fmt, progress=progress)
    report = run.report
    _print_counts(
        "ingested context", report.as_json(), as_json, {**report.stored, "run": run.run_id}
    )
    if report.accepted == 0:
        raise typer.Exit(1)


@ingest_app.command("quarantine")
def show_quarantine(
    run: Annotated[str | None, typer.Option("--run", help="Only this ingest run.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List quarantined lines: file, line number and reason (never the raw text)."""
    from custodes.storage.sql_context import SqlIngestRuns

    rows = SqlIngestRuns(_custodes().ready_engine()).quarantined(run, limit)
    if as_json:
        out.print(orjson.dumps({"quarantined": rows}).decode(), soft_wrap=True, highlight=False)
        return
    table = Table("run", "file", "line", "reason", title="quarantine")
    for row in rows:
        table.add_row(row["run_id"], row["source_file"], str(row["line"]), row["reason"])
    out.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    custodes = _custodes()
    revision = custodes.upgrade_database()
    out.print(f"database at revision {revision}")


@app.command()
def simulate(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder to write the hospital's files into.")
    ],
    preset: Annotated[
        str, typer.Option("--preset", help="small (a week, 150 staff), hospital or health-system.")
    ] = "small",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 1,
    staff: Annotated[
        int | None, typer.Option("--staff", min=1, help="Override the staff count.")
    ] = None,
    patients: Annotated[
        int | None, typer.Option("--patients", min=1, help="Override the patient count.")
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="Override the number of days.")
    ] = None,
    rate: Annotated[
        list[str] | None,
        typer.Option("--rate", help="Scenario rate per 1,000 staff-days, SCENARIO=X (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a hospital: context, access logs and sign-ins with labelled misuse.

    Writes context/ (FHIR NDJSON and CSV), events.ndjson (FHIR AuditEvents),
    events.csv, signins.ndjson, labels.csv and summary.json; all of it goes through
    `custodes ingest` unchanged.
    """
    from custodes.core.errors import ConfigurationError
    from custodes.simulate.config import parse_rate_overrides
    from custodes.simulate.run import run_preset

    try:
        rates = parse_rate_overrides(rate or [])
        with (
            err.status(f"simulating the {preset} preset", spinner="dots")
            if not as_json
            else _nothing()
        ):
            summary = run_preset(
                preset, seed, out_dir, staff=staff, patients=patients, days=days, rates=rates
            )
    except ValueError as error:  # a bad preset, rate or size: the message says which
        raise ConfigurationError(str(error)) from error
    counts = {
        "access_events": summary.access_events,
        "signin_events": summary.signin_events,
        "misuse_events": summary.misuse_events,
    }
    if as_json:
        out.print(orjson.dumps(counts).decode(), soft_wrap=True, highlight=False)
        return
    _print_counts(
        f"simulated hospital ({preset}, seed {seed})",
        counts,
        False,
        {"written to": str(summary.out_dir)},
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@app.command()
def detect(
    events: Annotated[
        list[Path], typer.Option("--events", help="Access log(s): FHIR AuditEvent NDJSON or CSV.")
    ],
    context: Annotated[
        Path,
        typer.Option("--context", help="Folder of context files (staff, patients, encounters)."),
    ],
    scores_out: Annotated[
        Path, typer.Option("--scores-out", help="Where to write event_id,score,explained,reasons.")
    ],
    train_until: Annotated[
        str | None,
        typer.Option(
            "--train-until",
            help="Fit on the events before this date or instant (UTC) and score the rest.",
        ),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="More Sigma rule files or folders, beside the shipped pack."),
    ] = None,
    budget: BudgetOpt = 10.0,
    threshold: ThresholdOpt = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Alerts to show.")] = 10,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Score every access from 0 to 100 with its reasons, and say which are explained.

    Accesses at or above the alert threshold are stored as alerts in the data
    directory's store and grouped into cases: `custodes cases list` shows them.
    """
    from custodes.correlate.alerts import budget_threshold
    from custodes.detect.batch import detect_log, write_scores
    from custodes.detect.rules import RuleSet
    from custodes.ingest.context_service import read_context_folder
    from custodes.ingest.service import read_event_files

    cut = _instant(train_until) if train_until else None
    ruleset = RuleSet.default()
    if rules:
        ruleset = RuleSet([*ruleset, *RuleSet.load(rules)])
    hospital, batch = read_context_folder(context)
    log = read_event_files(events)
    # Verdicts of closed cases train the supervised ranker (once both classes exist).
    application = _custodes()
    verdicts = application.case_book().verdict_labels()
    result = detect_log(
        log.access,
        hospital,
        train_until=cut,
        rules=ruleset,
        seed=seed,
        verdicts=application.training_labels(log.access, seed=seed),
    )
    write_scores(result.scores, scores_out)
    if threshold is None:
        threshold = budget_threshold(result.scores["score"], budget)
    departments = hospital.staff.select("user_id", department="user_department")
    recorded = application.record_alerts(result.scores, log.access, threshold, departments)
    application.record_model_version(
        verdicts=verdicts.height,
        confirmed_misuse=int(verdicts["label"].sum()) if verdicts.height else 0,
        supervised=result.engine.ranker_ is not None,
        trained_on=result.trained_on,
        threshold=threshold,
        alerts=recorded.new_alerts,
    )
    summary = {
        **result.summary(threshold),
        "threshold": threshold,
        "alerts": recorded.new_alerts,
        "cases": recorded.cases_touched,
        "new_cases": recorded.new_cases,
        "verdicts": verdicts.height,
        "supervised": result.engine.ranker_ is not None,
        "quarantined_lines": log.report.quarantined,
        "quarantined_context": len(batch.quarantined),
        "rules": len(ruleset),
    }
    if as_json:
        out.print(orjson.dumps(summary).decode(), highlight=False, soft_wrap=True)
        return
    table = Table(title=f"top alerts (score >= {threshold:g})", show_lines=False)
    for column in ("score", "event", "explained", "reasons"):
        table.add_column(column, overflow="fold")
    alerts = result.scores.filter(pl.col("score") >= threshold).sort(
        ["score", "event_id"], descending=[True, False]
    )
    for row in alerts.head(top).iter_rows(named=True):
        table.add_row(
            f"{row['score']:.0f}", row["event_id"], str(row["explained"]).lower(), row["reasons"]
        )
    out.print(table)
    out.print(
        f"scored {summary['scored']:,} accesses (trained on {summary['trained_on']:,}); "
        f"{summary['explained_share']:.1%} explained; {summary['at_or_above_threshold']:,} at or "
        f"above {threshold:g}; scores in {scores_out}"
    )
    out.print(
        f"{recorded.new_alerts:,} new alert(s), {recorded.duplicates:,} already known, "
        f"{recorded.suppressed:,} suppressed; {recorded.cases_touched:,} case(s) built or updated "
        "(see `custodes cases list`)"
    )


@app.command()
def watch(
    context: Annotated[
        Path,
        typer.Option("--context", help="Folder of context files (staff, patients, encounters)."),
    ],
    history: Annotated[
        list[Path],
        typer.Option(
            "--history", help="Access and sign-in logs to learn from before watching the bus."
        ),
    ],
    budget: BudgetOpt = 10.0,
    threshold: ThresholdOpt = None,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, help="Stop after this many events.")
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", min=0, help="Stop after this many seconds.")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Largest micro-batch.")] = 2_000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Watch the bus: score each micro-batch of accesses and sign-ins as it arrives, store
    the alerts, build and grow their cases and run the playbooks, continuously.

    Reads NATS JetStream at CUSTODES_NATS_URL (subjects PREFIX.access.> and
    PREFIX.events.signin.>, CUSTODES_NATS_PREFIX, default custodes). Runs until stopped,
    or until --max-events or --max-seconds.
    """
    from custodes.ingest.context_service import read_context_folder
    from custodes.ingest.service import read_event_files

    hospital, _ = read_context_folder(context)
    log = read_event_files(history)
    if log.access.is_empty():
        raise InputFormatError("the --history logs hold no access events to learn from")
    cut, totals = _custodes().watch(
        hospital,
        log,
        budget=budget,
        threshold=threshold,
        seed=seed,
        max_events=max_events,
        max_seconds=max_seconds,
        batch=batch,
    )
    summary = {"threshold": cut, **totals.as_json()}
    if as_json:
        out.print(orjson.dumps(summary).decode(), highlight=False, soft_wrap=True)
        return
    out.print(
        f"watched {totals.accesses:,} accesses and {totals.signins:,} sign-ins in "
        f"{totals.batches:,} micro-batch(es); {totals.alerts:,} alert(s) at or above "
        f"{cut:g}; {len(totals.cases):,} case(s) built or updated; {totals.actions:,} "
        "response run(s) (see `custodes cases list`)"
    )


def _instant(text: str) -> datetime:
    """A date or an ISO instant; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputFormatError(
            f"--train-until {text!r} is not a date (2026-03-05) or an ISO instant"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where to build the demo (default: a fresh folder)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated accesses.")] = 7,
) -> None:
    """The guided tour: a fresh hospital, its context and access logs, ingested."""
    from custodes.demo import run_demo

    run_demo(data_dir or _State.data_dir, seed=seed, console=out)


def run() -> None:
    """Entry point: one clear line per error, the traceback only under ``--debug``."""
    debug = "--debug" in sys.argv[1:]
    try:
        # Outside standalone mode Click returns the code of ``typer.Exit`` instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except CustodesError as error:
        if debug:
            raise
        err.print(f"error: {error}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except Exception as error:  # the last guard: no traceback reaches a user
        if debug:
            raise
        # The message of an unexpected error may quote input (PHI): name the type only.
        err.print(
            f"error: unexpected {type(error).__name__} (run again with --debug for details)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)
