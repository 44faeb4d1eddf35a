"""From scores to alerts: the budget's threshold, deduplication and suppressions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import polars as pl

from custodes.core.cases import Suppression, SuppressionScope, alert_id_of
from custodes.correlate.cases import ALERT_SCHEMA, conform_alerts

#: Alerts a privacy officer is willing to read per 10,000 accesses, by default.
DEFAULT_BUDGET = 10.0

#: A score below this is never an alert, however generous the budget.
MIN_ALERT_SCORE = 25.0

_SCOPE_COLUMNS = {
    SuppressionScope.USER: "user_id",
    SuppressionScope.PATIENT: "patient_id",
    SuppressionScope.DEPARTMENT: "department",
}


def budget_threshold(scores: np.ndarray | pl.Series, budget_per_10k: float) -> float:
    """The score that lets about ``budget_per_10k`` alerts through per 10,000 accesses.

    >>> budget_threshold(np.arange(10_000, dtype=float) / 100, 10)
    99.9
    """
    values = np.asarray(scores, dtype=float)
    if budget_per_10k <= 0 or not len(values):
        return 100.0
    share = min(1.0, budget_per_10k / 10_000)
    cut = float(np.quantile(values, 1.0 - share, method="higher"))
    return round(max(cut, MIN_ALERT_SCORE), 4)


def alerts_from_scores(
    scores: pl.DataFrame,
    events: pl.DataFrame,
    threshold: float,
    *,
    source: str = "access",
    departments: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The accesses scored at or above ``threshold`` as an alert frame (``ALERT_SCHEMA``).

    ``scores`` has ``event_id, score, reasons`` and, from the detection engine,
    ``rule_hits`` (the Sigma rules matched) and ``probability`` (the ranker's);
    ``events`` the accesses they score (``event_id, time, user_id, patient_id,
    action``); ``departments`` (``user_id``, ``department``) tells each user's
    department, for department-scoped suppressions.
    """
    optional = {"rule_hits": "rules", "probability": "probability"}
    over = scores.filter(pl.col("score") >= threshold).select(
        "event_id",
        "score",
        "reasons",
        *[pl.col(column).alias(name) for column, name in optional.items() if column in scores],
    )
    joined = over.join(
        events.select(
            "event_id", "time", "user_id", "patient_id", pl.col("action").cast(pl.String)
        ),
        on="event_id",
        how="inner",
    )
    if departments is not None:
        joined = joined.join(
            departments.select("user_id", "department").unique("user_id"), on="user_id", how="left"
        )
    else:
        joined = joined.with_columns(department=pl.lit(None, pl.String))
    return joined.with_columns(
        alert_id=pl.col("event_id").map_elements(
            lambda event_id: alert_id_of(source, event_id), return_dtype=pl.String
        ),
        source=pl.lit(source),
        time=pl.col("time").cast(pl.Datetime("us", "UTC")),
    ).pipe(conform_alerts).select(list(ALERT_SCHEMA))


def deduplicate(alerts: pl.DataFrame, known_ids: Iterable[str] = ()) -> pl.DataFrame:
    """Each alert once: drop repeats within the frame and those already stored."""
    unique = alerts.unique("alert_id", keep="first", maintain_order=True)
    known = list(known_ids)
    return unique.filter(~pl.col("alert_id").is_in(known)) if known else unique


def suppress(
    alerts: pl.DataFrame,
    suppressions: Sequence[Suppression],
    at: datetime,
    rule_hits: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``alerts`` into (kept, suppressed); ``suppressed`` names its ``suppression_id``.

    Only suppressions active at ``at`` apply. Rule-scoped ones read the alerts'
    ``rules`` column (the Sigma rules each event matched), and ``rule_hits``
    (``event_id``, ``rule_id``) when given.
    """
    marked = alerts.with_columns(suppression_id=pl.lit(None, pl.String))
    extra = (
        rule_hits.group_by("event_id").agg(pl.col("rule_id").alias("_hits"))
        if rule_hits is not None
        else None
    )
    if extra is not None:
        marked = marked.join(extra, on="event_id", how="left", maintain_order="left")
    else:
        marked = marked.with_columns(_hits=pl.lit(None, pl.List(pl.String)))
    for suppression in suppressions:
        if not suppression.active(at):
            continue
        if suppression.scope is SuppressionScope.RULE:
            rules = pl.col("rules") if "rules" in marked.columns else pl.lit([], pl.List(pl.String))
            matches = rules.list.contains(suppression.value).fill_null(False) | pl.col(
                "_hits"
            ).list.contains(suppression.value).fill_null(False)
        else:
            matches = pl.col(_SCOPE_COLUMNS[suppression.scope]) == suppression.value
        marked = marked.with_columns(
            suppression_id=pl.when(pl.col("suppression_id").is_null() & matches.fill_null(False))
            .then(pl.lit(suppression.suppression_id))
            .otherwise(pl.col("suppression_id"))
        )
    marked = marked.drop("_hits")
    suppressed = marked.filter(pl.col("suppression_id").is_not_null())
    kept = marked.filter(pl.col("suppression_id").is_null()).drop("suppression_id")
    return kept, suppressed
