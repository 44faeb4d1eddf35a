"""The block path (a clean block read whole by DuckDB) and the line path agree."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl

from custodes.core.events import AccessEvent, Action
from custodes.ingest import fhir_audit
from custodes.ingest.fhir_audit import FhirAuditEventReader, audit_event_resource


def _lines(count: int, seed: int = 3, with_ids: bool = True) -> list[bytes]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        event = AccessEvent(
            event_id=f"e{i}",
            time=datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=i),
            user_id=f"u{rng.randrange(20)}",
            patient_id=f"p{rng.randrange(50)}",
            action=rng.choice(list(Action)),
            resource_type="Observation",
            resource_id=str(i),
            workstation=f"WS-{rng.randrange(5)}",
            source_ip="10.0.0.1",
            purpose_of_use=rng.choice(["TREAT", "ETREAT", "HPAYMT"]),
        )
        resource = audit_event_resource(event)
        if not with_ids:
            del resource["id"]
        lines.append(orjson.dumps(resource) + b"\n")
    return lines


def _read(path: Path, **options):
    reader = FhirAuditEventReader()
    parts = list(reader.read(path, **options))
    return (
        pl.concat([p.access for p in parts]),
        [(q.line, q.reason) for p in parts for q in p.quarantined],
        sum(p.lines_read for p in parts),
    )


def test_block_path_equals_line_path(tmp_path: Path) -> None:
    lines = _lines(300, with_ids=False)
    path = tmp_path / "clean.ndjson"
    path.write_bytes(b"".join(lines))
    by_block, rejects, read = _read(path)
    by_line = FhirAuditEventReader().parse_lines(lines, path.name)
    assert not rejects and read == 300
    assert by_block.equals(by_line.access)
    assert by_block["event_id"].str.starts_with("h-").all()  # content ids, same on both paths


def test_blocks_split_a_file_and_keep_line_numbers(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fhir_audit, "CHUNK_BYTES", 4096)  # many blocks from a small file
    lines = _lines(200)
    lines[150] = b"{broken\n"
    lines.insert(77, b"\n")  # a blank line sends that block down the line path
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"".join(lines))
    access, rejects, read = _read(path)
    assert read == 201
    assert rejects == [(152, "malformed JSON")]
    assert access.height == 199
    numbers = dict(zip(access["event_id"], access["source_line"], strict=True))
    assert (
        numbers["e0"] == 1
        and numbers["e76"] == 77
        and numbers["e77"] == 79
        and numbers["e199"] == 201
    )


def test_a_broken_block_quarantines_only_its_bad_lines(tmp_path: Path) -> None:
    lines = _lines(50)
    lines[10] = b'{"resourceType": "AuditEvent", "agent": 7}\n'
    lines[20] = b"[1, 2, 3]\n"
    path = tmp_path / "two-bad.ndjson"
    path.write_bytes(b"".join(lines))
    access, rejects, _ = _read(path)
    assert access.height == 48
    assert rejects == [
        (11, "not a valid AuditEvent: Expected `array | null`, got `int` - at `$.agent`"),
        (21, "not a JSON object"),
    ]


def test_recorded_must_be_an_instant_with_an_offset(tmp_path: Path) -> None:
    lines = _lines(6)
    for index, recorded in enumerate(
        [
            "2026-05-01",
            "2026-05-01T10:00:00",
            "2026-05-01T10:00:00+0200",
            "2026-05-01T10:00:00.5-05:00",
        ]
    ):
        resource = orjson.loads(lines[index])
        resource["recorded"] = recorded
        lines[index] = orjson.dumps(resource) + b"\n"
    path = tmp_path / "times.ndjson"
    path.write_bytes(b"".join(lines))
    access, rejects, _ = _read(path)
    assert [line for line, _ in rejects] == [1, 2]
    assert all(reason.startswith("bad timestamp in time") for _, reason in rejects)
    times = dict(zip(access["event_id"], access["time"], strict=True))
    assert times["e2"] == datetime(2026, 5, 1, 8, tzinfo=UTC)
    assert times["e3"] == datetime(2026, 5, 1, 15, 0, 0, 500000, tzinfo=UTC)


def test_blocks_take_long_lines_gzip_and_an_open_last_line(tmp_path: Path, monkeypatch) -> None:
    import gzip

    monkeypatch.setattr(fhir_audit, "CHUNK_BYTES", 2048)  # about two lines a block
    lines = _lines(40)
    long = orjson.loads(lines[7])
    long["agent"][0]["who"]["display"] = "x" * 10_000  # longer than a block: it grows
    lines[7] = orjson.dumps(long) + b"\n"
    lines[-1] = lines[-1].rstrip(b"\n")  # no newline after the last line
    plain = tmp_path / "blocks.ndjson"
    plain.write_bytes(b"".join(lines))
    packed = tmp_path / "blocks.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        access, rejects, read = _read(path)
        assert not rejects and read == 40
        assert access["event_id"].to_list() == [f"e{i}" for i in range(40)]
        assert access["source_line"].to_list() == list(range(1, 41))
