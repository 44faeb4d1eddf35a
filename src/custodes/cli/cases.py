"""``custodes cases list|show|close|suppress``: the privacy officer's queue.

``--json`` prints one JSON object as the last line: ``{"cases": [...]}`` for ``list``,
``{"case": {...}, "alerts": [...]}`` for ``show``, ``{"case": {...}}`` for ``close``.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import click
import orjson
import typer
from rich.console import Console
from rich.table import Table

from custodes.core.cases import SuppressionScope, Verdict
from custodes.correlate.service import QUEUE_ORDERS, CaseBook

if TYPE_CHECKING:
    from custodes.bootstrap import Custodes

out = Console()

cases_app = typer.Typer(help="Work through the case queue.", no_args_is_help=True)

_factory: Callable[[], Custodes] | None = None


def _book() -> CaseBook:
    assert _factory is not None, "register() sets the factory"
    return _factory().case_book()


def _print_json(value: object) -> None:
    out.print(orjson.dumps(value).decode(), soft_wrap=True, highlight=False)


def _officer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
CaseArg = Annotated[str, typer.Argument(help="The case id (c-...).")]


@cases_app.command("list")
def list_cases(
    closed: Annotated[bool, typer.Option("--all", help="Closed cases too.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            click_type=click.Choice(QUEUE_ORDERS),
            help="severity: most severe first; uncertain: those the model is least sure "
            "of first, whose verdicts teach it most.",
        ),
    ] = "severity",
    as_json: JsonOpt = False,
) -> None:
    """The open cases, most severe first (or least sure first)."""
    cases = _book().queue(include_closed=closed, limit=limit, order=order)
    if as_json:
        _print_json({"cases": [CaseBook.describe(c) for c in cases]})
        return
    table = Table(title=f"cases ({len(cases)})")
    table.add_column("case", no_wrap=True)  # the id a privacy officer types: never cut
    for column in (
        "severity", "kind", "subject", "alerts", "patients", "first", "status", "unsure"
    ):
        table.add_column(column, overflow="fold")
    for case in cases:
        table.add_row(
            case.case_id,
            str(case.severity),
            case.kind,
            case.subject_text,
            str(case.alert_count),
            str(case.patient_count),
            f"{case.first_time:%m-%d %H:%M}",
            str(case.status),
            f"{case.uncertainty:.2f}" if case.uncertainty is not None else "",
        )
    out.print(table)


@cases_app.command("show")
def show(case_id: CaseArg, as_json: JsonOpt = False) -> None:
    """A case's story, tactics and alerts."""
    case, alerts = _book().show(case_id)
    described = CaseBook.describe(case)
    if as_json:
        _print_json(
            {
                "case": described,
                "alerts": [
                    {
                        "alert_id": a.alert_id,
                        "event_id": a.event_id,
                        "time": a.time.isoformat(),
                        "user_id": a.user_id,
                        "patient_id": a.patient_id,
                        "action": a.action,
                        "score": round(a.score, 2),
                        "reasons": a.reasons,
                        "rules": list(a.rules),
                        "probability": a.probability,
                    }
                    for a in alerts
                ],
            }
        )
        return
    out.print(f"[bold]{case.case_id}[/bold]  {case.severity}  {case.kind}  ({case.status})")
    for line in case.story:
        out.print(f"  {line}", highlight=False, markup=False)
    if case.tactics:
        out.print(f"  ATT&CK: {', '.join(case.tactics)}", highlight=False, markup=False)
    table = Table("time", "event", "user", "patient", "action", "score", "reasons")
    for a in alerts:
        table.add_row(
            f"{a.time:%m-%d %H:%M:%S}",
            a.event_id,
            a.user_id,
            a.patient_id or "",
            a.action,
            f"{a.score:.0f}",
            a.reasons,
        )
    out.print(table)


@cases_app.command("close")
def close(
    case_id: CaseArg,
    verdict: Annotated[Verdict, typer.Option("--verdict", help="How the case ends.")],
    note: Annotated[str | None, typer.Option("--note", help="Why, in a line.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a case with a verdict: confirmed_misuse, false_positive or justified_access."""
    case = _book().close(case_id, verdict, _officer(), note=note)
    if as_json:
        _print_json({"case": CaseBook.describe(case)})
        return
    out.print(f"closed {case.case_id}: {case.verdict}")


@cases_app.command("suppress")
def suppress(
    scope: Annotated[SuppressionScope, typer.Option("--scope", help="What to silence.")],
    value: Annotated[str, typer.Option("--value", help="The user, patient, rule or department.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the suppression).")],
    hours: Annotated[float, typer.Option("--hours", min=0.01, help="How long it lasts.")] = 24,
    as_json: JsonOpt = False,
) -> None:
    """Silence future alerts in one scope until it expires."""
    made = _book().suppress(scope, value, reason, _officer(), timedelta(hours=hours))
    summary = {
        "suppression_id": made.suppression_id,
        "scope": str(made.scope),
        "value": made.value,
        "expires_at": made.expires_at.isoformat(),
    }
    if as_json:
        _print_json({"suppression": summary})
        return
    out.print(f"suppressed {made.scope} {made.value} until {made.expires_at:%Y-%m-%d %H:%M} UTC")


@cases_app.command("undo-due")
def undo_due(as_json: JsonOpt = False) -> None:
    """Undo the response steps whose automatic undo time has come (e.g. temporary locks).

    Run it from a timer (cron, a systemd timer) every few minutes.
    """
    assert _factory is not None, "register() sets the factory"
    runs = _factory().undo_due()
    done = [{"step_id": r.step_id, "case_id": r.case_id, "action": r.action,
             "status": str(r.status), "detail": r.detail} for r in runs]
    if as_json:
        _print_json({"undone": done})
        return
    out.print(f"{len(done)} step(s) undone", highlight=False)


def register(app: typer.Typer, factory: Callable[[], Custodes]) -> None:
    global _factory
    _factory = factory
    app.add_typer(cases_app, name="cases")
