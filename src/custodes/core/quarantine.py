"""Input that could not be used: kept, with where it came from and why."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One line or entry that an ingest reader could not use (an event or a context record).

    Attributes
    ----------
    source_format: the reader (``fhir-auditevent``, ``csv``, ...).
    source_file: the file it came from.
    line: 1-based line number (entry number in a Bundle).
    reason: why, in words, never quoting the PHI it may hold.
    raw: the untouched text of the line, so nothing is lost.
    """

    source_format: str
    source_file: str
    line: int
    reason: str
    raw: str


QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source_format": pl.String(),
    "source_file": pl.String(),
    "line": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}
