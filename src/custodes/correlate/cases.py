"""Correlation: the alerts of one user in one time window become one case.

Vectorised with Polars: the alerts are bucketed by user and window, each correlation
rule becomes an aggregation over the buckets, and the first rule that fires names the
case. ``correlate`` is pure: the same alerts, rules and history give the same cases,
with the same ids, so re-running a batch updates its cases instead of doubling them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from custodes.core.cases import Case, Severity
from custodes.correlate.rules import EXPORT_ACTIONS, STAGE_TACTICS, CorrelationRule

#: The columns of an alert frame (one row per alert).
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "event_id": pl.String(),
    "source": pl.String(),
    "time": pl.Datetime("us", "UTC"),
    "user_id": pl.String(),
    "patient_id": pl.String(),
    "action": pl.String(),
    "score": pl.Float64(),
    "reasons": pl.String(),
    "department": pl.String(),
}

_STAGE_LABELS = {"unusual_signin": "unusual sign-in", "access": "access", "export": "export"}


@dataclass(frozen=True)
class Correlation:
    """The cases, and which case each alert belongs to (``alert_id``, ``case_id``)."""

    cases: tuple[Case, ...]
    assignment: pl.DataFrame


def score_severity(score: float) -> Severity:
    """The severity a lone alert earns from its score.

    >>> score_severity(95), score_severity(80), score_severity(61)
    (<Severity.HIGH: 'high'>, <Severity.MEDIUM: 'medium'>, <Severity.LOW: 'low'>)
    """
    if score >= 90:
        return Severity.HIGH
    if score >= 75:
        return Severity.MEDIUM
    return Severity.LOW


def case_id_of(user_id: str, window_start: datetime, salt: str = "") -> str:
    digest = hashlib.blake2b(
        f"{user_id}\x1f{window_start.isoformat()}\x1f{salt}".encode(), digest_size=10
    )
    return "c-" + digest.hexdigest()


def _with_stages(alerts: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    return alerts.with_columns(
        stage=pl.when(pl.col("source") == "signin")
        .then(pl.lit("unusual_signin"))
        .when(pl.col("action").is_in(EXPORT_ACTIONS))
        .then(pl.lit("export"))
        .otherwise(pl.lit("access")),
        window_start=pl.col("time").dt.truncate(f"{int(window.total_seconds())}s"),
    ).sort("user_id", "window_start", "time", "alert_id")


def _ordered_reached(rule: CorrelationRule) -> list[pl.Expr]:
    """Row-level: has the chain reached its last stage, in order, by this alert?"""
    group = ("user_id", "window_start")
    reached = None
    columns = []
    for position, stage in enumerate(rule.stages):
        hit = pl.col("stage") == stage
        step = hit if reached is None else (reached & hit)
        name = f"_{rule.name}_{position}"
        columns.append(step.cast(pl.Int8).cum_max().over(group).cast(pl.Boolean).alias(name))
        reached = pl.col(name)
    return columns


def _rule_expression(rule: CorrelationRule) -> pl.Expr:
    """Aggregation over one bucket: does ``rule`` fire on it?"""
    span = pl.lit(rule.timespan)
    if rule.type == "event_count":
        fired = pl.len() >= rule.gte
    elif rule.type == "value_count":
        fired = pl.col(rule.field).drop_nulls().n_unique() >= rule.gte
    elif rule.type == "temporal":
        firsts = [pl.col("time").filter(pl.col("stage") == s).min() for s in rule.stages]
        fired = pl.all_horizontal(f.is_not_null() for f in firsts) & (
            (pl.max_horizontal(firsts) - pl.min_horizontal(firsts)) <= span
        )
    else:  # temporal_ordered
        last = f"_{rule.name}_{len(rule.stages) - 1}"
        start = pl.col("time").filter(pl.col("stage") == rule.stages[0]).min()
        end = pl.col("time").filter(pl.col(last)).min()
        fired = pl.col(last).any() & ((end - start) <= span)
    return fired.fill_null(False).alias(f"fired_{rule.name}")


def correlate(
    alerts: pl.DataFrame,
    rules: Sequence[CorrelationRule],
    *,
    prior_offences: Mapping[str, int] | None = None,
    closed_case_ids: frozenset[str] = frozenset(),
) -> Correlation:
    """Group ``alerts`` (``ALERT_SCHEMA``) into cases by user and time window.

    The window is the longest timespan of the rules. ``prior_offences`` counts each
    user's earlier cases closed as confirmed misuse (the repeat-offender history): a
    repeat offender's case is one severity higher. Alerts that fall in the window of
    a case already closed open a follow-up case instead of reopening it.
    """
    prior_offences = prior_offences or {}
    window = max((r.timespan for r in rules), default=timedelta(hours=1))
    if alerts.is_empty():
        return Correlation((), pl.DataFrame(schema={"alert_id": pl.String, "case_id": pl.String}))
    staged = _with_stages(alerts.select(list(ALERT_SCHEMA)), window)
    ordered_rules = [r for r in rules if r.type == "temporal_ordered"]
    for rule in ordered_rules:
        for column in _ordered_reached(rule):  # each stage builds on the one before
            staged = staged.with_columns(column)
    stage_firsts = [
        pl.col("time").filter(pl.col("stage") == stage).min().alias(f"first_{stage}")
        for stage in STAGE_TACTICS
    ]
    buckets = staged.group_by("user_id", "window_start", maintain_order=True).agg(
        pl.col("alert_id"),
        pl.len().alias("alerts"),
        pl.col("patient_id").drop_nulls().n_unique().alias("patients"),
        pl.col("score").max().alias("score"),
        pl.col("time").min().alias("first_time"),
        pl.col("time").max().alias("last_time"),
        pl.col("reasons")
        .filter(pl.col("reasons") != "")
        .sort_by(pl.col("score").filter(pl.col("reasons") != ""), descending=True)
        .unique(maintain_order=True)
        .head(3)
        .alias("top_reasons"),
        pl.col("patient_id").filter(pl.col("stage") == "access").n_unique().alias("accessed"),
        *stage_firsts,
        *[_rule_expression(rule) for rule in rules],
    )
    cases = []
    case_ids = []
    for row in buckets.iter_rows(named=True):
        fired = next((rule for rule in rules if row[f"fired_{rule.name}"]), None)
        case_id = case_id_of(row["user_id"], row["window_start"])
        if case_id in closed_case_ids:
            case_id = case_id_of(row["user_id"], row["window_start"], salt=row["alert_id"][0])
        offences = int(prior_offences.get(row["user_id"], 0))
        cases.append(_case(case_id, row, fired, offences))
        case_ids.append(case_id)
    assignment = (
        buckets.select("alert_id")
        .with_columns(case_id=pl.Series(case_ids, dtype=pl.String))
        .explode("alert_id")
    )
    return Correlation(tuple(cases), assignment)


def _case(case_id: str, row: dict, rule: CorrelationRule | None, offences: int) -> Case:
    severity = score_severity(row["score"])
    if rule is not None and rule.severity.rank > severity.rank:
        severity = rule.severity
    if offences:
        severity = severity.raised()
    kind = rule.name if rule else ("single_alert" if row["alerts"] == 1 else "alert_group")
    tactics = rule.tactics if rule else ()
    first, last = row["first_time"], row["last_time"]
    story = [
        f"{row['alerts']} alert(s) by user {row['user_id']} on {row['patients']} patient(s), "
        f"{first:%Y-%m-%d %H:%M} to {last:%H:%M} UTC; highest score {row['score']:.0f}"
    ]
    if rule is not None:
        story.append(f"{rule.title or rule.name} ({rule.type})")
    stages = sorted(
        (row[f"first_{stage}"], stage) for stage in STAGE_TACTICS if row[f"first_{stage}"]
    )
    if len(stages) > 1 or (stages and stages[0][1] != "access"):
        story.append(
            "then ".join(
                f"{_STAGE_LABELS[stage]} at {time:%H:%M} "
                + (f"({row['accessed']} patient(s)) " if stage == "access" else "")
                for time, stage in stages
            ).strip()
        )
    story.extend(f"reason: {reason}" for reason in row["top_reasons"])
    if offences:
        story.append(f"repeat offender: {offences} earlier case(s) confirmed as misuse")
    return Case(
        case_id=case_id,
        kind=kind,
        user_id=row["user_id"],
        severity=severity,
        score=float(row["score"]),
        first_time=first,
        last_time=last,
        alert_ids=tuple(row["alert_id"]),
        patient_count=int(row["patients"]),
        tactics=tuple(tactics),
        story=tuple(story),
        prior_offences=offences,
    )
