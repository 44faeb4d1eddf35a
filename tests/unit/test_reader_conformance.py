"""One conformance table every access-log reader passes.

Each case is a real fixture with good lines and planted bad ones. Every reader must:
account for every record (accepted + quarantined = read), quarantine each bad line
with its line number and reason, keep the good lines intact, give the same ids when
reading the same file again, and give the same result sequentially and in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from custodes.core.events import ACCESS_EVENT_SCHEMA, SIGNIN_EVENT_SCHEMA, AccessEvent
from custodes.ingest.base import ChunkResult, EventReader
from custodes.ingest.csv_access import CsvAccessLogReader, CsvMapping
from custodes.ingest.fhir_audit import FhirAuditEventReader

EVENTS = Path(__file__).parents[1] / "fixtures" / "events"


@dataclass
class Case:
    name: str
    reader: EventReader
    file: str
    read: int
    access_ids: list[str]
    signins: int
    quarantined: dict[int, str]  # line -> start of the reason


CASES = [
    Case(
        "fhir-ndjson",
        FhirAuditEventReader(),
        "good_and_bad.ndjson",
        read=12,
        access_ids=["ae-1", "ae-2"],
        signins=1,
        quarantined={
            3: "malformed JSON",
            5: "missing required field time",
            6: "bad timestamp in time",
            7: "unknown action code",
            8: "no patient entity",
            9: "not an AuditEvent resource",
            11: "unknown outcome code",
            12: "not a valid AuditEvent: Expected `array | null`, got `str` - at `$.agent`",
            13: "missing required field user_id",
        },
    ),
    Case(
        "csv-canonical",
        CsvAccessLogReader(),
        "good_and_bad.csv",
        read=11,
        access_ids=["c-1", "c-2", "h-"],
        signins=0,
        quarantined={
            4: "malformed row: expected 13 fields, found 9",
            5: "missing required field time",
            6: "bad timestamp in time",
            7: "unknown action code",
            8: "missing required field patient_id",
            10: "unknown outcome code",
            11: "unknown purpose-of-use code",
            13: "missing required field user_id",
        },
    ),
    Case(
        "csv-epic",
        CsvAccessLogReader(CsvMapping.load(Path("epic"))),
        "epic_export.csv",
        read=7,
        access_ids=["h-", "h-", "h-", "h-"],
        signins=0,
        quarantined={
            6: "bad timestamp in time",
            7: "missing required field user_id",
            8: "malformed row: expected 5 fields, found 3",
        },
    ),
]


def _read_all(reader: EventReader, path: Path, **options) -> ChunkResult:
    total = ChunkResult()
    parts = list(reader.read(path, **options))
    return ChunkResult(
        access=pl.concat([total.access, *(p.access for p in parts)]),
        signins=pl.concat([total.signins, *(p.signins for p in parts)]),
        quarantined=[q for p in parts for q in p.quarantined],
        lines_read=sum(p.lines_read for p in parts),
    )


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def test_every_record_is_accepted_or_quarantined(case: Case) -> None:
    result = _read_all(case.reader, EVENTS / case.file)
    assert result.records_read == case.read
    assert result.access.height + result.signins.height + len(result.quarantined) == case.read
    assert result.signins.height == case.signins


def test_bad_lines_are_quarantined_with_line_and_reason(case: Case) -> None:
    result = _read_all(case.reader, EVENTS / case.file)
    got = {q.line: q.reason for q in result.quarantined}
    assert sorted(got) == sorted(case.quarantined)
    for line, reason in case.quarantined.items():
        assert got[line].startswith(reason), (line, got[line])
    raw_lines = (EVENTS / case.file).read_text().splitlines()
    for record in result.quarantined:
        assert record.raw == raw_lines[record.line - 1]
        assert record.source_file == case.file


def test_good_lines_keep_their_ids_and_schema(case: Case) -> None:
    result = _read_all(case.reader, EVENTS / case.file)
    assert result.access.schema == pl.Schema(ACCESS_EVENT_SCHEMA)
    assert result.signins.schema == pl.Schema(SIGNIN_EVENT_SCHEMA)
    ids = result.access["event_id"].to_list()
    assert len(ids) == len(case.access_ids)
    for got, expected in zip(ids, case.access_ids, strict=True):
        assert got.startswith(expected)
    for row in result.access.iter_rows(named=True):
        event = AccessEvent.from_row(row)  # every accepted row is a valid domain event
        assert event.time.tzinfo is not None


def test_rereading_gives_the_same_ids(case: Case) -> None:
    first = _read_all(case.reader, EVENTS / case.file)
    second = _read_all(case.reader, EVENTS / case.file)
    assert first.access["event_id"].to_list() == second.access["event_id"].to_list()


def test_parallel_equals_sequential(case: Case, tmp_path: Path) -> None:
    # Repeat the fixture so the file splits into several chunks across two workers.
    source = (EVENTS / case.file).read_bytes()
    header, body = (
        source.split(b"\n", 1) if isinstance(case.reader, CsvAccessLogReader) else (b"", source)
    )
    big = tmp_path / case.file
    big.write_bytes((header + b"\n" if header else b"") + body * 400)
    sequential = _read_all(case.reader, big, workers=1, chunk_lines=97)
    parallel = _read_all(case.reader, big, workers=2, chunk_lines=97)
    assert sequential.access.equals(parallel.access)
    assert [(q.line, q.reason) for q in sequential.quarantined] == [
        (q.line, q.reason) for q in parallel.quarantined
    ]
    assert sequential.records_read == case.read * 400


def test_gzip_reads_the_same(case: Case, tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / (case.file + ".gz")
    packed.write_bytes(gzip.compress((EVENTS / case.file).read_bytes()))
    plain = _read_all(case.reader, EVENTS / case.file)
    result = _read_all(case.reader, packed)
    assert result.access.drop("source_file").equals(plain.access.drop("source_file"))


def test_fhir_values_are_normalised() -> None:
    result = _read_all(FhirAuditEventReader(), EVENTS / "good_and_bad.ndjson")
    first, second = result.access.iter_rows(named=True)
    assert first["user_id"] == "u1" and first["patient_id"] == "p1"
    assert (first["resource_type"], first["resource_id"]) == ("Observation", "o1")
    assert first["source_ip"] == "10.0.0.5" and first["outcome"] == "success"
    assert second["user_id"] == "u2" and second["patient_id"] == "MRN-77"
    assert second["action"] == "search" and second["break_the_glass"] is True
    assert second["time"] == datetime(2026, 11, 1, 8, 0, 0, 250000, tzinfo=UTC)
    signin = result.signins.row(0, named=True)
    assert (signin["kind"], signin["outcome"], signin["source_ip"]) == (
        "login",
        "minor_failure",
        "10.0.0.5",
    )


def test_epic_times_are_local_and_actions_mapped() -> None:
    result = _read_all(
        CsvAccessLogReader(CsvMapping.load(Path("epic"))), EVENTS / "epic_export.csv"
    )
    rows = result.access.select("time", "action", "application").rows()
    assert rows[0] == (datetime(2026, 11, 1, 13, 14, tzinfo=UTC), "read", "Epic")  # EST, UTC-5
    assert rows[1][1] == "print" and rows[2][1] == "search"
    assert rows[3][0] == datetime(2026, 11, 2, 7, 14, tzinfo=UTC)
