from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from custodes.core.events import ACCESS_EVENT_SCHEMA
from custodes.storage.archive import ParquetArchive


def _batch(ids: list[str], day: int) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            **{c: [None] * n for c in ACCESS_EVENT_SCHEMA},
            "event_id": ids,
            "time": [datetime(2026, 11, day, 12, tzinfo=UTC)] * n,
            "user_id": ["u"] * n,
            "patient_id": ["p"] * n,
            "action": ["read"] * n,
            "outcome": ["success"] * n,
            "break_the_glass": [False] * n,
        },
        schema=ACCESS_EVENT_SCHEMA,
    )


def test_partitioned_by_day_and_deduplicated_across_runs(tmp_path: Path) -> None:
    first = ParquetArchive(tmp_path, flush_rows=2)
    first.write_access_events(_batch(["a", "b"], 1))
    first.write_access_events(_batch(["b", "c"], 2))
    first.write_access_events(_batch(["c"], 2))
    assert first.flush().access == 4  # a, b on day 1; b, c on day 2 (ids are per day)
    days = sorted(p.name for p in (tmp_path / "access").iterdir())
    assert days == ["day=2026-11-01", "day=2026-11-02"]
    second = ParquetArchive(tmp_path)  # a new run re-reads the ids already archived
    second.write_access_events(_batch(["a", "b", "z"], 1))
    assert second.flush().access == 1
    frame = second.scan_access_events().collect()
    assert frame.height == 5 and frame.schema["time"] == pl.Datetime("us", "UTC")


def test_duckdb_reads_the_archive(tmp_path: Path) -> None:
    archive = ParquetArchive(tmp_path)
    archive.write_access_events(_batch(["a", "b", "c"], 3))
    archive.flush()
    count = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{archive.access_glob}', hive_partitioning=true)"
    ).fetchall()
    assert count == [(3,)]


def test_empty_archive_scans_empty(tmp_path: Path) -> None:
    assert ParquetArchive(tmp_path).scan_access_events().collect().height == 0


def test_days_out_of_order_in_one_flush_land_in_their_own_days(tmp_path: Path) -> None:
    archive = ParquetArchive(tmp_path)
    for ids, day in [(["a"], 2), (["b", "c"], 1), (["d"], 2), (["e"], 3)]:
        archive.write_access_events(_batch(ids, day))
    assert archive.flush().access == 5
    by_day = {
        folder.name: pl.read_parquet(list(folder.glob("*.parquet")))["event_id"].to_list()
        for folder in sorted((tmp_path / "access").iterdir())
    }
    assert by_day == {
        "day=2026-11-01": ["b", "c"],
        "day=2026-11-02": ["a", "d"],
        "day=2026-11-03": ["e"],
    }
