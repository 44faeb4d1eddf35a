"""Correlation: alerts that tell one story become one case.

Two subjects, as Sigma correlations' ``group-by``:

- **user** (every alert): the alerts of one user form a case while each comes within
  the *gap* (the longest user rule's timespan, an hour by default) of the one before,
  so an attack that runs across a clock hour stays one case. The rules then look for
  their pattern inside the case, each within its own timespan (a sliding window, not
  a clock bucket).
- **patient**: the alerts on one patient's record, by any users, grouped the same way
  by the longest patient rule's timespan; such a case exists only where a patient rule
  fires ("one record opened by many users"), and an alert may belong to its user's case
  and to its patient's case at once.

Vectorised with Polars end to end: the cases come out as a table (``Correlation.table``)
and become ``Case`` records only when asked for. ``correlate`` is pure: the same
alerts, rules and history give the same cases with the same ids, so re-running a batch
updates its cases instead of doubling them. A case keeps its id as it grows: alerts
that arrive with the ``case_id`` of a stored case lend it to the case they join.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import polars as pl

from custodes.core.cases import Case, Severity
from custodes.correlate.rules import (
    EXPORT_ACTIONS,
    STAGE_TACTICS,
    CorrelationRule,
    CorrelationSubject,
)

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
    # The Sigma rules the event matched (for rule-scoped suppressions), and the
    # supervised ranker's probability of misuse when one was fitted (null otherwise).
    "rules": pl.List(pl.String()),
    "probability": pl.Float64(),
}

#: The columns of ``Correlation.table``: one row per case, the fields of ``Case``.
CASE_SCHEMA: dict[str, pl.DataType] = {
    "case_id": pl.String(), "kind": pl.String(), "subject": pl.String(),
    "user_id": pl.String(), "patient_id": pl.String(), "severity": pl.String(),
    "score": pl.Float64(), "probability": pl.Float64(),
    "first_time": pl.Datetime("us", "UTC"), "last_time": pl.Datetime("us", "UTC"),
    "alert_ids": pl.List(pl.String()), "patient_count": pl.Int64(), "user_count": pl.Int64(),
    "tactics": pl.List(pl.String()), "story": pl.List(pl.String()),
    "prior_offences": pl.Int64(),
}  # fmt: skip
CASE_COLUMNS = tuple(CASE_SCHEMA)

#: The longest a case runs: an alert this long after its case's first alert opens the
#: next case, however steadily the user keeps alerting.
MAX_CASE_SPAN = timedelta(days=1)

#: Between the lines of a story while it is built (no line holds it).
STORY_SEPARATOR = "\x1f"

_STAGE_LABELS = {"unusual_signin": "unusual sign-in", "access": "access", "export": "export"}
_SEVERITY_NAMES = [severity.value for severity in Severity]


def conform_alerts(alerts: pl.DataFrame) -> pl.DataFrame:
    """``alerts`` with exactly the columns of ``ALERT_SCHEMA`` (the optional ``rules``
    and ``probability`` null when missing), plus the ``case_id`` and ``patient_case_id``
    of stored alerts (null for newcomers)."""
    columns = [
        (pl.col(name) if name in alerts.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in ALERT_SCHEMA.items()
    ]
    for known in ("case_id", "patient_case_id"):
        columns.append(
            (pl.col(known) if known in alerts.columns else pl.lit(None)).cast(pl.String)
            .alias(known)
        )
    return alerts.select(columns)


def _score_rank() -> pl.Expr:
    """The severity rank a case earns from its best score: 90 high, 75 medium, else low.

    >>> pl.select(score=pl.Series([95.0, 80.0, 61.0])).select(_score_rank()).to_series().to_list()
    [2, 1, 0]
    """
    score = pl.col("score")
    return (
        pl.when(score >= 90).then(Severity.HIGH.rank)
        .when(score >= 75).then(Severity.MEDIUM.rank)
        .otherwise(Severity.LOW.rank)
    )  # fmt: skip


def case_id_of(subject: CorrelationSubject, first_time: pl.Expr, key: pl.Expr) -> pl.Expr:
    """``c-<first alert, Unix seconds>-<user>`` or ``p-<...>-<patient>``.

    >>> from datetime import UTC, datetime
    >>> pl.select(case_id_of("user", pl.lit(datetime(2026, 1, 1, tzinfo=UTC)),
    ...     pl.lit("u1"))).item()
    'c-1767225600-u1'
    """
    prefix = "c" if subject == "user" else "p"
    return pl.format(f"{prefix}-{{}}-{{}}", first_time.dt.epoch("s"), key)


def follow_up_id(case_id: str, first_alert_id: str) -> str:
    """The id of a case that would otherwise take the id of a closed one."""
    digest = hashlib.blake2b(f"{case_id}\x1f{first_alert_id}".encode(), digest_size=6)
    return f"{case_id}~{digest.hexdigest()}"


@dataclass(frozen=True)
class Correlation:
    """The cases (a table, and as ``Case`` records on demand), which user case and
    which patient case each alert belongs to, and the stored open cases that a
    newcomer joined into an older one (``merged``: absorbed id to surviving id)."""

    table: pl.DataFrame
    assignment: pl.DataFrame  # alert_id, case_id
    patient_assignment: pl.DataFrame = field(default_factory=lambda: _empty_assignment())
    merged: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def cases(self) -> tuple[Case, ...]:
        return cases_of(self.table)


def cases_of(table: pl.DataFrame) -> tuple[Case, ...]:
    """``Case`` records from a case table (``CASE_COLUMNS``)."""
    # Column by column, and the list columns as joined strings split again in Python:
    # several times quicker than handing Python nested lists or zone-aware datetimes.
    flat = table.select(
        *(c for c in CASE_COLUMNS
          if c not in ("alert_ids", "story", "tactics", "first_time", "last_time")),
        pl.col("alert_ids").list.join(STORY_SEPARATOR),
        pl.col("story").list.join(STORY_SEPARATOR),
        pl.col("tactics").list.join(STORY_SEPARATOR),
        pl.col("first_time").dt.epoch("us"),
        pl.col("last_time").dt.epoch("us"),
    )  # fmt: skip
    columns = [flat[name].to_list() for name in CASE_COLUMNS]
    severities = {s.value: s for s in Severity}
    tactics_of: dict[str, tuple[str, ...]] = {}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def split(text: str) -> tuple[str, ...]:
        return tuple(text.split(STORY_SEPARATOR)) if text else ()

    with _collector_paused():
        return tuple(
            Case(
                case_id=case_id,
                kind=kind,
                subject=subject,
                user_id=user,
                patient_id=patient,
                severity=severities[severity],
                score=score,
                probability=probability,
                first_time=epoch + timedelta(microseconds=first),
                last_time=epoch + timedelta(microseconds=last),
                alert_ids=split(alert_ids),
                patient_count=patients,
                user_count=users,
                tactics=tactics_of.setdefault(tactics, split(tactics)),
                story=split(story),
                prior_offences=offences,
            )
            for (case_id, kind, subject, user, patient, severity, score, probability, first,
                 last, alert_ids, patients, users, tactics, story, offences)
            in zip(*columns, strict=True)
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hundreds of thousands of new records hold no reference cycles, yet the cyclic
    garbage collector would walk them again at every generation threshold they cross
    (about a third of the time of building them); it resumes as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def correlate(
    alerts: pl.DataFrame,
    rules: Sequence[CorrelationRule],
    *,
    prior_offences: Mapping[str, int] | None = None,
    closed_case_ids: frozenset[str] = frozenset(),
    patient_alerts: pl.DataFrame | None = None,
) -> Correlation:
    """Group ``alerts`` (``ALERT_SCHEMA``) into user cases and patient cases.

    ``prior_offences`` counts each user's earlier cases closed as confirmed misuse (the
    repeat-offender history): a repeat offender's case is one severity higher. A case
    whose id would be that of a closed case (``closed_case_ids``) gets a follow-up id
    instead: a closed case is never reopened. ``patient_alerts``, when given, are what
    the patient rules read instead of ``alerts`` (the case book adds other users'
    recent alerts on the same records).
    """
    staged = {
        "user": _staged(alerts),
        "patient": _staged(alerts if patient_alerts is None else patient_alerts),
    }
    offences = pl.DataFrame(
        {
            "user_id": list((prior_offences or {}).keys()),
            "prior_offences": list((prior_offences or {}).values()),
        },
        schema={"user_id": pl.String, "prior_offences": pl.Int64},
    )
    tables, assignments, merged = [], {}, {}
    for subject in ("user", "patient"):
        chosen = [r for r in rules if r.subject == subject]
        if subject == "patient" and not chosen:
            continue
        table, assignment, absorbed = _correlate_subject(
            staged[subject], subject, chosen, offences, closed_case_ids
        )
        tables.append(table)
        assignments[subject] = assignment
        merged.update(absorbed)
    empty = _empty_assignment()
    return Correlation(
        table=pl.concat(tables) if tables else _empty_table(),
        assignment=assignments.get("user", empty),
        patient_assignment=assignments.get("patient", empty),
        merged=merged,
    )


def _staged(alerts: pl.DataFrame) -> pl.DataFrame:
    """The alerts with their stage in a chain: unusual sign-in, access or export."""
    return conform_alerts(alerts).with_columns(
        stage=pl.when(pl.col("source") == "signin").then(pl.lit("unusual_signin"))
        .when(pl.col("action").is_in(EXPORT_ACTIONS)).then(pl.lit("export"))
        .otherwise(pl.lit("access"))
    )  # fmt: skip


def _empty_assignment() -> pl.DataFrame:
    return pl.DataFrame(schema={"alert_id": pl.String, "case_id": pl.String})


def _empty_table() -> pl.DataFrame:
    return pl.DataFrame(schema=CASE_SCHEMA)


def _correlate_subject(
    staged: pl.DataFrame,
    subject: CorrelationSubject,
    rules: Sequence[CorrelationRule],
    offences: pl.DataFrame,
    closed_case_ids: frozenset[str],
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str]]:
    key = "user_id" if subject == "user" else "patient_id"
    known = "case_id" if subject == "user" else "patient_case_id"
    gap = max((r.timespan for r in rules), default=timedelta(hours=1))
    rows = staged.filter(pl.col(key).is_not_null()).sort(key, "time", "alert_id")
    if rows.is_empty():
        return _empty_table(), _empty_assignment(), {}
    # A new case starts at a new key or after a silence longer than the gap.
    starts = (pl.col(key) != pl.col(key).shift()).fill_null(True) | (
        pl.col("time").diff() > pl.lit(gap)
    ).fill_null(True)
    rows = _with_longest_span(rows.with_columns(group=starts.cum_sum().cast(pl.Int64)))
    if subject == "patient":
        # A patient case exists only where a patient rule fires: drop at once the many
        # groups where none could (too few alerts, users or stages in all).
        rows = rows.filter(pl.any_horizontal(_could_fire(rule) for rule in rules))
        if rows.is_empty():
            return _empty_table(), _empty_assignment(), {}
        renumbered = (pl.col("group") != pl.col("group").shift()).fill_null(True).cum_sum()
        rows = rows.with_columns(group=renumbered.cast(pl.Int64))
    rows = _with_time_line(rows, gap).with_columns(_rule_row_columns(rules))
    buckets = rows.group_by("group", maintain_order=True).agg(
        pl.col(key).first().alias("key"),
        pl.col("alert_id"),
        pl.col(known).drop_nulls().unique(maintain_order=True).alias("known_ids"),
        pl.len().alias("alerts"),
        pl.col("patient_id").drop_nulls().n_unique().alias("patient_count"),
        pl.col("user_id").n_unique().alias("user_count"),
        pl.col("score").max().alias("score"),
        pl.col("probability").max().alias("probability"),
        pl.col("time").min().alias("first_time"),
        pl.col("time").max().alias("last_time"),
        pl.col("reasons")
        .filter(pl.col("reasons") != "")
        .sort_by(pl.col("score").filter(pl.col("reasons") != ""), descending=True)
        .unique(maintain_order=True)
        .head(3)
        .alias("top_reasons"),
        pl.col("patient_id").filter(pl.col("stage") == "access").n_unique().alias("accessed"),
        *[
            pl.col("time").filter(pl.col("stage") == stage).min().alias(f"first_{stage}")
            for stage in STAGE_TACTICS
        ],
        *[pl.col(f"_row_{rule.name}").any().alias(f"fired_{rule.name}") for rule in rules],
    )
    if any(rule.type == "value_count" for rule in rules):
        buckets = _with_value_counts(buckets, rows, rules)
    if subject == "patient":  # a patient case exists only where a patient rule fires
        buckets = buckets.filter(pl.any_horizontal(f"fired_{r.name}" for r in rules))
    # A case keeps the id of the stored case it grew from (the earliest, if a newcomer
    # bridged two); the others it absorbed are reported as merged.
    fresh_id = case_id_of(subject, pl.col("first_time"), pl.col("key"))
    buckets = buckets.with_columns(
        case_id=pl.coalesce(pl.col("known_ids").list.first(), fresh_id)
    ).with_columns(
        # A late alert before a long case's first can move where the day-long pieces
        # split; a stored id then goes to its first piece only, the others are new.
        case_id=pl.when(pl.col("case_id").is_first_distinct())
        .then(pl.col("case_id"))
        .otherwise(fresh_id)
    )
    merged = {
        absorbed: survivor
        for survivor, ids in buckets.select("case_id", "known_ids").iter_rows()
        if len(ids) > 1
        for absorbed in ids[1:]
    }
    if closed_case_ids:
        buckets = buckets.with_columns(
            case_id=pl.when(pl.col("case_id").is_in(list(closed_case_ids)))
            .then(
                pl.struct("case_id", pl.col("alert_id").list.first().alias("first")).map_elements(
                    lambda v: follow_up_id(v["case_id"], v["first"]), return_dtype=pl.String
                )
            )
            .otherwise(pl.col("case_id"))
        )
    table = _shape_cases(buckets, subject, rules, offences)
    assignment = buckets.select("alert_id", "case_id").explode("alert_id")
    return table, assignment, merged


def _with_longest_span(rows: pl.DataFrame) -> pl.DataFrame:
    """Split the groups longer than ``MAX_CASE_SPAN``: an alert that comes that long or
    more after its case's first alert opens the next case, whatever the gap.

    So a user who keeps alerting all week makes a case a day, not one that never ends.
    Each case's start anchors the next, so it is worked out in order, and only for the
    few groups that are that long; the case book hands it a stored case's first alert,
    so a stream splits where a batch of everything does.
    """
    span = pl.col("time").max().over("group") - pl.col("time").min().over("group")
    long = rows.select(span >= pl.lit(MAX_CASE_SPAN)).to_series()
    if not long.any():
        return rows
    picked = rows.filter(long).select("group", "time")
    limit = MAX_CASE_SPAN
    pieces, piece, last_group, anchor = [], 0, None, None
    for group, time in picked.iter_rows():
        if group != last_group or time - anchor >= limit:
            piece, last_group, anchor = piece + 1, group, time
        pieces.append(piece)
    # Every piece becomes a group of its own, numbered after the existing groups.
    top = rows["group"].max()
    assert isinstance(top, int)
    split = pl.Series(pieces, dtype=pl.Int64) + top
    regrouped = rows["group"].scatter(long.arg_true(), split)
    renumbered = (regrouped != regrouped.shift()).fill_null(True).cum_sum().cast(pl.Int64)
    return rows.with_columns(group=renumbered)


def _could_fire(rule: CorrelationRule) -> pl.Expr:
    """Row level: does the alert's group hold enough, in all, for ``rule`` to fire?"""
    if rule.type == "event_count":
        return pl.len().over("group") >= rule.gte
    if rule.type == "value_count":
        assert rule.field is not None
        return pl.col(rule.field).drop_nulls().n_unique().over("group") >= rule.gte
    return pl.all_horizontal((pl.col("stage") == s).any().over("group") for s in rule.stages)


def _with_time_line(rows: pl.DataFrame, gap: timedelta) -> pl.DataFrame:
    """Add ``_line``: each alert's time on one line through all the cases (rows sorted
    by case, then time), with more than ``gap`` between one case and the next, so
    sliding windows and "latest so far" need no per-case grouping: nothing of another
    case is ever within a rule's timespan. ``group`` numbers the cases 1, 2, ..."""
    micros = pl.col("time").dt.epoch("us")
    spans = rows.group_by("group", maintain_order=True).agg(
        micros.min().alias("first"), (micros.max() - micros.min()).alias("length")
    )
    spacing = pl.col("length") + int(gap.total_seconds() * 1e6) + 1_000_000
    offsets = spans.select((spacing.cum_sum() - spacing - pl.col("first")).alias("offset"))
    shift = offsets["offset"].gather(rows["group"] - 1)
    return rows.with_columns(_line=micros + shift)


def _rule_row_columns(rules: Sequence[CorrelationRule]) -> list[pl.Expr]:
    """Row level: has the rule's pattern completed, within its timespan, at this alert?
    (``value_count`` is settled per case afterwards.) Reads ``_line``."""
    line = pl.col("_line")
    columns = []
    for rule in rules:
        span = int(rule.timespan.total_seconds() * 1e6)
        if rule.type == "event_count":
            window = pl.repeat(1, pl.len()).rolling_sum_by(
                "_line", window_size=f"{span}i", closed="both"
            )
            fired = window >= rule.gte
        elif rule.type == "value_count":
            fired = pl.lit(False)  # the sliding distinct count: _with_value_counts
        elif rule.type == "temporal":
            # The latest time of each stage so far: all within the span of this alert.
            latest = [
                pl.when(pl.col("stage") == s).then(line).forward_fill() for s in rule.stages
            ]
            fired = pl.all_horizontal(t.is_not_null() for t in latest) & (
                line - pl.min_horizontal(latest) <= span
            )
        else:  # temporal_ordered: the latest start from which the chain completes here
            start = pl.when(pl.col("stage") == rule.stages[0]).then(line).forward_fill()
            for stage in rule.stages[1:-1]:
                start = pl.when(pl.col("stage") == stage).then(start).forward_fill()
            fired = (pl.col("stage") == rule.stages[-1]) & (line - start <= span)
        columns.append(fired.fill_null(False).alias(f"_row_{rule.name}"))
    return columns


def _with_value_counts(
    buckets: pl.DataFrame, rows: pl.DataFrame, rules: Sequence[CorrelationRule]
) -> pl.DataFrame:
    """``value_count`` rules: at least ``gte`` distinct values within one timespan.

    Only the cases with that many distinct values in all are candidates, so the
    sliding distinct count runs over a few rows, not all of them.
    """
    for rule in (r for r in rules if r.type == "value_count"):
        assert rule.field is not None
        candidates = rows.filter(
            pl.col(rule.field).drop_nulls().n_unique().over("group") >= rule.gte
        )
        name = f"fired_{rule.name}"
        if candidates.is_empty():
            continue
        windows = candidates.rolling(
            "time", period=rule.timespan, closed="both", group_by="group"
        ).agg(pl.col(rule.field).drop_nulls().n_unique().alias("distinct"))
        fired = windows.group_by("group").agg((pl.col("distinct").max() >= rule.gte).alias("hit"))
        buckets = (
            buckets.join(fired, on="group", how="left", maintain_order="left")
            .with_columns(pl.col(name) | pl.col("hit").fill_null(False))
            .drop("hit")
        )
    return buckets


def _shape_cases(
    buckets: pl.DataFrame,
    subject: CorrelationSubject,
    rules: Sequence[CorrelationRule],
    offences: pl.DataFrame,
) -> pl.DataFrame:
    """The case table (``CASE_SCHEMA``): kind, severity, tactics and the story, all as
    expressions over the buckets."""
    catalogue = pl.DataFrame(
        {
            "kind": [r.name for r in rules],
            "rule_line": [f"{r.title or r.name} ({r.type})" for r in rules],
            "rule_rank": [r.severity.rank for r in rules],
            "tactics": [list(r.tactics) for r in rules],
        },
        schema={"kind": pl.String, "rule_line": pl.String, "rule_rank": pl.Int64,
                "tactics": pl.List(pl.String)},
    )  # fmt: skip
    kind = pl.coalesce(
        *[pl.when(pl.col(f"fired_{rule.name}")).then(pl.lit(rule.name)) for rule in rules],
        pl.when(pl.col("alerts") == 1)
        .then(pl.lit("single_alert"))
        .otherwise(pl.lit("alert_group")),
    )
    user = pl.col("key") if subject == "user" else pl.lit("")
    patient = pl.lit(None, pl.String) if subject == "user" else pl.col("key")
    shaped = buckets.with_columns(
        kind=kind, user_id=user, patient_id=patient
    ).join(catalogue, on="kind", how="left", maintain_order="left")
    if subject == "user":
        shaped = shaped.join(offences, on="user_id", how="left", maintain_order="left")
        shaped = shaped.with_columns(pl.col("prior_offences").fill_null(0))
    else:
        shaped = shaped.with_columns(prior_offences=pl.lit(0, pl.Int64))
    rank = pl.max_horizontal(_score_rank(), pl.col("rule_rank").fill_null(0)) + (
        pl.col("prior_offences") > 0
    ).cast(pl.Int64)
    severity = rank.clip(0, len(_SEVERITY_NAMES) - 1).replace_strict(
        dict(enumerate(_SEVERITY_NAMES)), return_dtype=pl.String
    )
    span = pl.format(
        "{} to {} UTC; highest score {}",
        pl.col("first_time").dt.strftime("%Y-%m-%d %H:%M"),
        _last_time_text(),
        pl.col("score").round(0).cast(pl.Int64),
    )
    if subject == "user":
        head = pl.format("{} alert(s) by user {} on {} patient(s), {}", "alerts", "key",
                         "patient_count", span)  # fmt: skip
    else:
        head = pl.format("{} alert(s) on patient {} by {} user(s), {}", "alerts", "key",
                         "user_count", span)  # fmt: skip
    offender = pl.when(pl.col("prior_offences") > 0).then(
        pl.format("repeat offender: {} earlier case(s) confirmed as misuse", "prior_offences")
    )
    reasons = (
        pl.when(pl.col("top_reasons").list.len() > 0)
        .then(
            pl.col("top_reasons")
            .list.eval(pl.lit("reason: ") + pl.element())
            .list.join(STORY_SEPARATOR)
        )
    )
    # The lines joined by a separator no line holds: far quicker than a list of lists.
    story = pl.concat_str(
        head, pl.col("rule_line"), pl.col("stages_line"), reasons, offender,
        separator=STORY_SEPARATOR, ignore_nulls=True,
    )  # fmt: skip
    chained = pl.col("first_unusual_signin").is_not_null() | pl.col("first_export").is_not_null()
    stages = shaped.filter(chained).select("group", _stages_line().alias("stages_line"))
    shaped = shaped.join(stages, on="group", how="left", maintain_order="left")
    return shaped.select(
        "case_id",
        "kind",
        pl.lit(subject).alias("subject"),
        "user_id",
        "patient_id",
        severity.alias("severity"),
        pl.col("score").cast(pl.Float64),
        pl.col("probability").cast(pl.Float64),
        "first_time",
        "last_time",
        pl.col("alert_id").alias("alert_ids"),
        pl.col("patient_count").cast(pl.Int64),
        pl.col("user_count").cast(pl.Int64),
        pl.col("tactics").fill_null(pl.lit([], pl.List(pl.String))),
        story.str.split(STORY_SEPARATOR).alias("story"),
        pl.col("prior_offences").cast(pl.Int64),
    ).cast(CASE_SCHEMA)


def _last_time_text() -> pl.Expr:
    """The case's last alert: the time alone on its first day, the date too after it."""
    same_day = pl.col("first_time").dt.date() == pl.col("last_time").dt.date()
    return (
        pl.when(same_day)
        .then(pl.col("last_time").dt.strftime("%H:%M"))
        .otherwise(pl.col("last_time").dt.strftime("%Y-%m-%d %H:%M"))
    )


def _stages_line() -> pl.Expr:
    """The chain in time order (for cases with a sign-in or an export): "unusual
    sign-in at 10:00 then access at 10:01 (12 patient(s)) then export at 10:40"."""
    parts = []
    for stage in STAGE_TACTICS:
        first = pl.col(f"first_{stage}")
        text = pl.format("{} at {}", pl.lit(_STAGE_LABELS[stage]), first.dt.strftime("%H:%M"))
        if stage == "access":
            text = pl.format("{} ({} patient(s))", text, "accessed")
        # A sortable prefix puts the stages in time order; it is cut off again below.
        parts.append(pl.format("{}|{}", first.dt.strftime("%Y%m%d%H%M%S%.6f"), text))
    return (
        pl.concat_list(parts)
        .list.drop_nulls()
        .list.sort()
        .list.eval(pl.element().str.split_exact("|", 1).struct.field("field_1"))
        .list.join(" then ")
    )
