"""Ingestion runs: pick a reader per file, stream chunks into the sinks, count.

The service holds no I/O of its own: readers parse, sinks store, the quarantine keeps
what could not be used. Counts follow one rule: every record read is accepted or
quarantined, and accepted = stored + duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from custodes.core.errors import InputFormatError
from custodes.core.ports import EventSink, QuarantineSink, StoredCounts
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
    # Check every file (and choose its reader) before reading any: a typo in the last
    # name must not leave the first files half-reported.
    for path in paths:
        if not path.is_file():
            raise InputFormatError(f"{path} is not a file")
    readers = [event_reader_for(path, fmt, mapping) for path in paths]
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
