"""The ingest run services over the in-memory adapters: counts, duplicates, quarantine."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.core.errors import InputFormatError
from custodes.ingest.context_service import ingest_context_files
from custodes.ingest.csv_access import CsvMapping
from custodes.ingest.service import ingest_event_files
from custodes.storage.memory import MemoryContextStore, MemoryEventSink, MemoryQuarantine

FIXTURES = Path(__file__).parents[1] / "fixtures"
NDJSON = FIXTURES / "events" / "good_and_bad.ndjson"
EPIC = FIXTURES / "events" / "epic_export.csv"


def test_counts_add_up_and_every_sink_gets_every_event() -> None:
    first, second, quarantine = MemoryEventSink(), MemoryEventSink(), MemoryQuarantine()
    report = ingest_event_files([NDJSON], [first, second], quarantine)
    assert (report.read, report.accepted, report.quarantined, report.duplicates) == (12, 3, 9, 0)
    assert report.read == report.accepted + report.quarantined
    assert first.access.equals(second.access) and first.access.height == 2
    assert first.signins.height == 1
    assert sorted(q.line for q in quarantine.records) == [3, 5, 6, 7, 8, 9, 11, 12, 13]


def test_duplicates_are_counted_against_the_first_sink() -> None:
    sink, quarantine = MemoryEventSink(), MemoryQuarantine()
    ingest_event_files([NDJSON], [sink], quarantine)
    again = ingest_event_files([NDJSON, NDJSON], [sink], quarantine)
    assert again.accepted == 6 and again.duplicates == 6
    assert sink.access.height == 2  # nothing stored twice


def test_mapping_selects_the_csv_reader() -> None:
    report = ingest_event_files(
        [EPIC], [MemoryEventSink()], MemoryQuarantine(), mapping=CsvMapping.load(Path("epic"))
    )
    assert (report.accepted, report.quarantined) == (4, 3)


def test_a_missing_file_stops_the_run_before_anything_is_read(tmp_path: Path) -> None:
    sink = MemoryEventSink()
    with pytest.raises(InputFormatError, match="is not a file"):
        ingest_event_files([NDJSON, tmp_path / "missing.ndjson"], [sink], MemoryQuarantine())
    assert sink.access.is_empty()


def test_an_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    with pytest.raises(InputFormatError, match="empty.ndjson is empty"):
        ingest_event_files([empty], [MemoryEventSink()], MemoryQuarantine())


def test_context_run_upserts_and_reports() -> None:
    store, quarantine = MemoryContextStore(), MemoryQuarantine()
    report = ingest_context_files([FIXTURES / "context" / "hospital.ndjson"], store, quarantine)
    assert report.accepted > 0 and report.stored["patients"] == len(store.patients)
    assert report.read >= report.accepted + report.quarantined
