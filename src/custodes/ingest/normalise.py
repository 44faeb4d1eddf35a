"""Vectorised validation and normalisation of raw access-event columns.

Readers extract raw strings column by column; this module turns them into the
``ACCESS_EVENT_SCHEMA`` in one Polars pass and names, row by row, what is wrong with
the rows it cannot accept. Reasons never quote the offending value (it may be PHI).
"""

from __future__ import annotations

import polars as pl

from custodes.core.events import (
    ACCESS_EVENT_SCHEMA,
    BREAK_THE_GLASS_PURPOSES,
    SIGNIN_EVENT_SCHEMA,
    Outcome,
)
from custodes.ingest.codes import ACTION_CODES, OUTCOME_CODES, PURPOSE_OF_USE_CODES

#: The raw columns a reader hands over (strings), besides ``source_line``.
RAW_ACCESS_COLUMNS: tuple[str, ...] = (
    "event_id",
    "time",
    "user_id",
    "patient_id",
    "action",
    "resource_type",
    "resource_id",
    "application",
    "workstation",
    "source_ip",
    "outcome",
    "purpose_of_use",
    "session_id",
)

RAW_ACCESS_SCHEMA: dict[str, pl.DataType] = {
    **dict.fromkeys(RAW_ACCESS_COLUMNS, pl.String()),
    "source_line": pl.Int64(),
}

_AWARE_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)


def parse_instants(raw: pl.Expr, naive_time_zone: str | None) -> pl.Expr:
    """Parse ISO 8601 instants to UTC; naive times are read in ``naive_time_zone``.

    With ``naive_time_zone=None`` a time without an offset does not parse: FHIR
    requires one, and guessing would shift every event by hours.
    """
    text = raw.str.strip_chars().str.replace(" ", "T", literal=True, n=1)
    aware = text.str.to_datetime(_AWARE_FORMAT, strict=False, time_zone="UTC", time_unit="us")
    if naive_time_zone is None:
        return aware
    naive = pl.coalesce(
        [
            raw.str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us")
            for fmt in _NAIVE_FORMATS
        ]
    )
    localised = naive.dt.replace_time_zone(
        naive_time_zone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    return pl.coalesce([aware, localised])


def _instants(frame: pl.DataFrame, naive_time_zone: str | None) -> pl.Expr:
    """The ``time`` column as UTC instants: the reader's own parse when it gave one.

    A reader that parses times itself (DuckDB, for FHIR) hands them over as
    ``parsed_time``, NULL where the text is not an instant with an offset.
    """
    if "parsed_time" in frame.columns:
        return pl.col("parsed_time").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return parse_instants(pl.col("time"), naive_time_zone)


def normalise_access_frame(
    raw: pl.DataFrame,
    *,
    source_format: str,
    source_file: str,
    naive_time_zone: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate raw columns; return the accepted events and the rejects.

    ``raw`` holds the string columns ``RAW_ACCESS_COLUMNS`` and ``source_line``.
    Action words must already be canonical or a known source code (``ACTION_CODES``).
    Rejects are a frame of ``source_line`` and ``reason``.

    >>> raw = pl.DataFrame({c: [None, None] for c in RAW_ACCESS_SCHEMA}, schema=RAW_ACCESS_SCHEMA)
    >>> raw = raw.with_columns(event_id=pl.Series(["a", "b"]),
    ...     time=pl.Series(["2026-01-01T02:14:00Z", "yesterday"]), user_id=pl.lit("u1"),
    ...     patient_id=pl.lit("p1"), action=pl.lit("read"), source_line=pl.Series([1, 2]))
    >>> events, rejects = normalise_access_frame(raw, source_format="csv", source_file="x.csv")
    >>> events["event_id"].to_list(), rejects.rows()
    (['a'], [(2, 'bad timestamp in time (expected ISO 8601 with a UTC offset)')])
    """
    stripped = [pl.col(c).str.strip_chars().replace("", None).alias(c) for c in RAW_ACCESS_COLUMNS]
    parsed = ["parsed_time"] if "parsed_time" in raw.columns else []
    frame = raw.select(*stripped, pl.col("source_line").cast(pl.Int64), *parsed)
    action_keys = list(ACTION_CODES)
    outcome_keys = list(OUTCOME_CODES)
    purpose = pl.col("purpose_of_use").str.to_uppercase()
    frame = frame.with_columns(
        _time=_instants(frame, naive_time_zone),
        _action=pl.col("action")
        .str.to_lowercase()
        .replace_strict(action_keys, [ACTION_CODES[k] for k in action_keys], default=None),
        _outcome=pl.col("outcome")
        .str.to_lowercase()
        .replace_strict(outcome_keys, [OUTCOME_CODES[k] for k in outcome_keys], default=None),
        _purpose=purpose,
    )
    time_hint = (
        "(expected ISO 8601 with a UTC offset)"
        if naive_time_zone is None
        else "(expected ISO 8601 or a documented local format)"
    )
    reason = (
        pl.when(pl.col("user_id").is_null())
        .then(pl.lit("missing required field user_id"))
        .when(pl.col("patient_id").is_null())
        .then(pl.lit("missing required field patient_id"))
        .when(pl.col("time").is_null())
        .then(pl.lit("missing required field time"))
        .when(pl.col("_time").is_null())
        .then(pl.lit(f"bad timestamp in time {time_hint}"))
        .when(pl.col("action").is_null())
        .then(pl.lit("missing required field action"))
        .when(pl.col("_action").is_null())
        .then(pl.lit("unknown action code"))
        .when(pl.col("outcome").is_not_null() & pl.col("_outcome").is_null())
        .then(pl.lit("unknown outcome code"))
        .when(pl.col("_purpose").is_not_null() & ~pl.col("_purpose").is_in(PURPOSE_OF_USE_CODES))
        .then(pl.lit("unknown purpose-of-use code"))
        .when(pl.col("event_id").is_null())
        .then(pl.lit("missing required field event_id"))
        .otherwise(None)
    )
    frame = frame.with_columns(_reason=reason)
    rejected = frame.filter(pl.col("_reason").is_not_null()).select(
        "source_line", pl.col("_reason").alias("reason")
    )
    accepted = frame.filter(pl.col("_reason").is_null()).select(
        pl.col("event_id"),
        pl.col("_time").alias("time"),
        pl.col("user_id"),
        pl.col("patient_id"),
        pl.col("_action").alias("action"),
        pl.col("resource_type"),
        pl.col("resource_id"),
        pl.col("application"),
        pl.col("workstation"),
        pl.col("source_ip"),
        pl.col("_outcome").fill_null(pl.lit(str(Outcome.SUCCESS))).alias("outcome"),
        pl.col("_purpose").alias("purpose_of_use"),
        pl.col("_purpose")
        .is_in(BREAK_THE_GLASS_PURPOSES)
        .fill_null(False)
        .alias("break_the_glass"),
        pl.col("session_id"),
        pl.lit(source_format).alias("source_format"),
        pl.lit(source_file).alias("source_file"),
        pl.col("source_line"),
    )
    return accepted.cast(ACCESS_EVENT_SCHEMA), rejected  # type: ignore[arg-type]


#: The raw columns of a sign-in (strings), besides ``source_line``.
RAW_SIGNIN_COLUMNS: tuple[str, ...] = (
    "event_id",
    "time",
    "user_id",
    "kind",
    "outcome",
    "source_ip",
    "device",
    "application",
    "session_id",
    "mfa_method",
)


def normalise_signin_frame(
    raw: pl.DataFrame, *, source_format: str, source_file: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate raw sign-in columns; return accepted sign-ins and rejects (line, reason)."""
    outcome_keys = list(OUTCOME_CODES)
    frame = raw.with_columns(
        _time=_instants(raw, None),
        _outcome=pl.col("outcome")
        .str.to_lowercase()
        .replace_strict(outcome_keys, [OUTCOME_CODES[k] for k in outcome_keys], default=None),
    )
    reason = (
        pl.when(pl.col("user_id").is_null())
        .then(pl.lit("missing required field user (agent.who)"))
        .when(pl.col("time").is_null())
        .then(pl.lit("missing required field time"))
        .when(pl.col("_time").is_null())
        .then(pl.lit("bad timestamp in time (expected ISO 8601 with a UTC offset)"))
        .when(pl.col("outcome").is_not_null() & pl.col("_outcome").is_null())
        .then(pl.lit("unknown outcome code"))
        .otherwise(None)
    )
    frame = frame.with_columns(_reason=reason)
    rejected = frame.filter(pl.col("_reason").is_not_null()).select(
        "source_line", pl.col("_reason").alias("reason")
    )
    accepted = (
        frame.filter(pl.col("_reason").is_null())
        .with_columns(
            time=pl.col("_time"),
            outcome=pl.col("_outcome").fill_null(pl.lit(str(Outcome.SUCCESS))),
            source_format=pl.lit(source_format),
            source_file=pl.lit(source_file),
        )
        .select(list(SIGNIN_EVENT_SCHEMA))
        .cast(SIGNIN_EVENT_SCHEMA)  # type: ignore[arg-type]
    )
    return accepted, rejected
