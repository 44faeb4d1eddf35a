"""Ingestion runs: pick a reader per file, stream chunks into the sinks, count.

The service holds no I/O of its own: readers parse, sinks store, the quarantine keeps
what could not be used. Counts follow one rule: every record read is accepted or
quarantined, and accepted = stored + duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from custodes.core.errors import InputFormatError
from custodes.core.events import empty_access_events, empty_signin_events
from custodes.core.ports import EventSink, QuarantineSink, StoredCounts
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import EventReader, sniff_format
from custodes.ingest.base import is_gzip as _is_gzip
from custodes.ingest.csv_access import CsvAccessLogReader, CsvMapping
from custodes.ingest.fhir_audit import FhirAuditEventReader

EVENT_FORMATS = ("fhir", "csv")

#: Called with (file, done, total) as work proceeds (bytes for logs, files for context;
#: total 0 when unknown, as for gzip).
Progress = Callable[[Path, int, int], None]


@dataclass
class IngestReport:
    """What a run did. ``read`` counts records (not blank lines)."""

    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    access_events: int = 0
    signin_events: int = 0
    files: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
        }


def event_reader_for(path: Path, fmt: str | None, mapping: CsvMapping | None) -> EventReader:
    fmt = fmt or ("csv" if mapping else sniff_format(path))
    if fmt == "fhir":
        return FhirAuditEventReader()
    if fmt == "csv":
        return CsvAccessLogReader(mapping)
    raise InputFormatError(
        f"unknown event format {fmt!r}; choose one of {', '.join(EVENT_FORMATS)}"
    )


def _checked_readers(
    paths: Sequence[Path], fmt: str | None, mapping: CsvMapping | None
) -> list[EventReader]:
    """Check every file (and choose its reader) before reading any: a typo in the last
    name must not leave the first files half-read."""
    for path in paths:
        if not path.is_file():
            raise InputFormatError(f"{path} is not a file")
    return [event_reader_for(path, fmt, mapping) for path in paths]


def ingest_event_files(
    paths: Sequence[Path],
    sinks: Sequence[EventSink],
    quarantine: QuarantineSink,
    *,
    fmt: str | None = None,
    mapping: CsvMapping | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest access logs into every sink; the first sink's counts decide duplicates."""
    if not sinks:
        raise ValueError("ingest_event_files needs at least one sink")
    readers = _checked_readers(paths, fmt, mapping)
    # Sinks count from their creation; a sink may serve several runs, so count the change.
    before: StoredCounts = sinks[0].flush()
    report = IngestReport()
    for path, reader in zip(paths, readers, strict=True):
        # Gzip files report uncompressed bytes against an unknown total.
        total = 0 if _is_gzip(path) else path.stat().st_size
        done = 0
        report.files.append(path.name)
        for chunk in reader.read(path, workers=workers):
            for sink in sinks:
                sink.write_access_events(chunk.access)
                sink.write_signin_events(chunk.signins)
            quarantine.quarantine(chunk.quarantined)
            report.read += chunk.records_read
            report.access_events += chunk.access.height
            report.signin_events += chunk.signins.height
            report.quarantined += len(chunk.quarantined)
            done += chunk.bytes_read
            if progress is not None:
                progress(path, done, total)
    stored = [sink.flush() for sink in sinks]
    report.accepted = report.access_events + report.signin_events
    first: StoredCounts = stored[0]
    new = (first.access - before.access) + (first.signins - before.signins)
    report.duplicates = report.accepted - new
    return report


@dataclass
class EventLog:
    """Access and sign-in events read into memory, one copy per event id, time-ordered."""

    access: pl.DataFrame
    signins: pl.DataFrame
    quarantined: list[QuarantinedRecord]
    report: IngestReport


def read_event_files(
    paths: Sequence[Path],
    *,
    fmt: str | None = None,
    mapping: CsvMapping | None = None,
    workers: int = 1,
) -> EventLog:
    """Read access logs into data frames, for a batch detection run.

    Bad lines are quarantined as in ingestion; an event id seen twice keeps its first copy.
    """
    readers = _checked_readers(paths, fmt, mapping)
    access: list[pl.DataFrame] = []
    signins: list[pl.DataFrame] = []
    quarantined: list[QuarantinedRecord] = []
    report = IngestReport()
    for path, reader in zip(paths, readers, strict=True):
        report.files.append(path.name)
        for chunk in reader.read(path, workers=workers):
            access.append(chunk.access)
            signins.append(chunk.signins)
            quarantined.extend(chunk.quarantined)
            report.read += chunk.records_read
            report.access_events += chunk.access.height
            report.signin_events += chunk.signins.height
    report.quarantined = len(quarantined)
    report.accepted = report.access_events + report.signin_events
    access_frame = _distinct_in_time_order(pl.concat(access) if access else empty_access_events())
    signin_frame = _distinct_in_time_order(
        pl.concat(signins) if signins else empty_signin_events()
    )
    report.duplicates = report.accepted - access_frame.height - signin_frame.height
    return EventLog(access_frame, signin_frame, quarantined, report)


def _distinct_in_time_order(frame: pl.DataFrame) -> pl.DataFrame:
    if frame["event_id"].n_unique() != frame.height:
        frame = frame.unique("event_id", keep="first", maintain_order=True)
    return frame.sort("time", "event_id", maintain_order=True)
