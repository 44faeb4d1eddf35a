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
from datetime import UTC, timedelta

import numpy as np
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


def case_id_expression() -> pl.Expr:
    """``c-<window start, Unix seconds>-<user>``: the same user and window, the same id.

    >>> from datetime import UTC, datetime
    >>> pl.select(pl.lit("u1").alias("user_id"), pl.lit(datetime(2026, 1, 1, tzinfo=UTC))
    ...     .alias("window_start")).select(case_id_expression()).item()
    'c-1767225600-u1'
    """
    return pl.format("c-{}-{}", pl.col("window_start").dt.epoch("s"), pl.col("user_id"))


def follow_up_id(case_id: str, first_alert_id: str) -> str:
    """The id of the case that follows a closed one in the same window."""
    digest = hashlib.blake2b(f"{case_id}\x1f{first_alert_id}".encode(), digest_size=6)
    return f"{case_id}~{digest.hexdigest()}"


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
    # The story's first line and the case's kind, vectorised; the rest per case.
    kind = pl.coalesce(
        *[pl.when(pl.col(f"fired_{rule.name}")).then(pl.lit(rule.name)) for rule in rules],
        pl.when(pl.col("alerts") == 1)
        .then(pl.lit("single_alert"))
        .otherwise(pl.lit("alert_group")),
    )
    head = pl.format(
        "{} alert(s) by user {} on {} patient(s), {} to {} UTC; highest score {}",
        "alerts",
        "user_id",
        "patients",
        pl.col("first_time").dt.strftime("%Y-%m-%d %H:%M"),
        pl.col("last_time").dt.strftime("%H:%M"),
        pl.col("score").round(0).cast(pl.Int64),
    )
    chained = pl.col("first_unusual_signin").is_not_null() | pl.col("first_export").is_not_null()
    columns = buckets.select(
        kind.alias("kind"),
        head.alias("head"),
        chained.alias("chained"),
        "user_id",
        case_id_expression().alias("case_id"),
        "alert_id",
        "alerts",
        "patients",
        "score",
        # Naive here, UTC again below: far quicker than converting zone-aware values.
        pl.col("first_time").dt.replace_time_zone(None),
        pl.col("last_time").dt.replace_time_zone(None),
        "top_reasons",
    )
    by_name = {rule.name: rule for rule in rules}
    chained_rows = {
        i: row
        for i, row in zip(
            np.flatnonzero(columns["chained"].to_numpy()),
            buckets.filter(chained).iter_rows(named=True),
            strict=True,
        )
    }
    cases = []
    case_ids = []
    for i, (kind_name, head_line, _, user, case_id, alert_ids, _alerts, patients, score,
            first, last, reasons) in enumerate(columns.iter_rows()):
        rule = by_name.get(kind_name)
        if case_id in closed_case_ids:
            case_id = follow_up_id(case_id, alert_ids[0])
        offences = int(prior_offences.get(user, 0))
        severity = score_severity(score)
        if rule is not None and rule.severity.rank > severity.rank:
            severity = rule.severity
        if offences:
            severity = severity.raised()
        story = [head_line]
        if rule is not None:
            story.append(f"{rule.title or rule.name} ({rule.type})")
        if i in chained_rows:
            story.append(_stages_line(chained_rows[i]))
        story.extend(f"reason: {reason}" for reason in reasons)
        if offences:
            story.append(f"repeat offender: {offences} earlier case(s) confirmed as misuse")
        cases.append(
            Case(
                case_id=case_id,
                kind=kind_name,
                user_id=user,
                severity=severity,
                score=float(score),
                first_time=first.replace(tzinfo=UTC),
                last_time=last.replace(tzinfo=UTC),
                alert_ids=tuple(alert_ids),
                patient_count=int(patients),
                tactics=rule.tactics if rule else (),
                story=tuple(story),
                prior_offences=offences,
            )
        )
        case_ids.append(case_id)
    assignment = (
        buckets.select("alert_id")
        .with_columns(case_id=pl.Series(case_ids, dtype=pl.String))
        .explode("alert_id")
    )
    return Correlation(tuple(cases), assignment)


def _stages_line(row: dict) -> str:
    """The chain in time order: "unusual sign-in at 10:00 then access at 10:01 (12
    patient(s)) then export at 10:40"."""
    stages = sorted(
        (row[f"first_{stage}"], stage) for stage in STAGE_TACTICS if row[f"first_{stage}"]
    )
    return "then ".join(
        f"{_STAGE_LABELS[stage]} at {time:%H:%M} "
        + (f"({row['accessed']} patient(s)) " if stage == "access" else "")
        for time, stage in stages
    ).strip()
