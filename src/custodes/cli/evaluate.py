"""``custodes eval``: how well detector scores find the labelled misuse.

Registered on the main application by ``register(app)``. Errors are ``CustodesError``
subclasses, which ``custodes.cli.main.run`` prints as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from custodes.detect.evaluate import BudgetResult, Evaluation

#: The budget whose per-scenario table is shown, when it was evaluated.
SCENARIO_BUDGET = 10.0

# Its own console rather than main's: main imports this module to register the command.
out = Console()


def eval_command(
    labels: Annotated[
        Path, typer.Option("--labels", help="labels.csv: event_id,label,scenario,case_id.")
    ],
    scores: Annotated[
        Path, typer.Option("--scores", help="scores.csv: event_id,score,explained,reasons.")
    ],
    budget: Annotated[
        list[float] | None,
        typer.Option(
            "--budget",
            help="Alerts per 10,000 accesses (repeatable; default 1, 5, 10, 20 and 50).",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the evaluation as one JSON object.")
    ] = False,
) -> None:
    """Evaluate detector scores against labels: AUC, and what each alert budget catches.

    At a budget of B alerts per 10,000 accesses the alerts are the highest-scored
    events; equal scores go to the smaller event_id, so a run replays exactly.
    """
    from custodes.detect.evaluate import DEFAULT_BUDGETS, evaluate, read_labels, read_scores

    budgets = budget or list(DEFAULT_BUDGETS)
    result = evaluate(read_labels(labels), read_scores(scores), budgets)
    if json_out:
        out.print(
            orjson.dumps(result.as_json()).decode(),
            soft_wrap=True,
            highlight=False,
            markup=False,
            emoji=False,
        )
        return
    _print_summary(result)
    _print_budgets(result)
    chosen = (
        result.at_budget(SCENARIO_BUDGET)
        or result.at_budget(float(budgets[0]))
        or result.budgets[0]
    )
    _print_scenarios(chosen)
    for note in result.notes:
        out.print(Text(f"note: {note}", style="dim"))


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the application."""
    app.command("eval")(eval_command)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_summary(result: Evaluation) -> None:
    table = Table(title="evaluation", show_header=False)
    rows = {
        "events": f"{result.events:,}",
        "misuse events": f"{result.misuse_events:,}",
        "incidents": f"{result.incidents:,}",
        "ROC AUC": _ratio(result.roc_auc),
        "average precision": _ratio(result.average_precision),
        "legitimate accesses explained": _share(result.legitimate_explained),
        "misuse accesses explained": _share(result.misuse_explained),
    }
    for key, value in rows.items():
        table.add_row(key, value)
    out.print(table)


def _print_budgets(result: Evaluation) -> None:
    table = Table(title="alert budgets")
    for header in (
        "per 10,000",
        "alerts",
        "threshold",
        "precision",
        "incident recall",
        "event recall",
    ):
        table.add_column(header, justify="right")
    for row in result.budgets:
        table.add_row(
            f"{row.per_10000:g}",
            f"{row.alerts:,}",
            f"{row.threshold:g}",
            _share(row.precision),
            _share(row.incident_recall),
            _share(row.event_recall),
        )
    out.print(table)


def _print_scenarios(budget: BudgetResult) -> None:
    table = Table(title=f"incidents caught at {budget.per_10000:g} alerts per 10,000")
    longest = max((len(row.scenario) for row in budget.scenarios), default=8)
    table.add_column("scenario", no_wrap=True, min_width=longest)
    for header in ("incidents", "caught", "recall", "events", "alerted"):
        table.add_column(header, justify="right")
    for row in budget.scenarios:
        table.add_row(
            # Scenario names come from the labels file: never read them as markup.
            Text(row.scenario),
            f"{row.incidents:,}",
            f"{row.incidents_caught:,}",
            _share(row.incident_recall),
            f"{row.events:,}",
            f"{row.events_alerted:,}",
        )
    out.print(table)
