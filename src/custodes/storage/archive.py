"""The event archive: Parquet files partitioned by day, for Polars and DuckDB.

Layout under the archive root::

    access/day=2026-11-01/part-<run>-<n>.parquet
    signin/day=2026-11-01/part-<run>-<n>.parquet

Writes are buffered and flushed in large batches (a few files per day per ingest run,
not one per chunk). An event id already in the archive for that day is not written
again, so re-ingesting a file adds nothing. To check, the archive keeps the ids of the
days a run touches in memory as Arrow strings (about 40 bytes an event), which is the
one part of ingestion that grows with the input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl

from custodes.core.events import ACCESS_EVENT_SCHEMA, SIGNIN_EVENT_SCHEMA
from custodes.core.ports import StoredCounts

DEFAULT_FLUSH_ROWS = 250_000


class _Partitioned:
    """One kind of event (access or sign-in) under its own folder."""

    def __init__(self, root: Path, schema: dict, flush_rows: int, run: str) -> None:
        self.root = root
        self.schema = schema
        self.flush_rows = flush_rows
        self.run = run
        self.buffer: list[pl.DataFrame] = []
        self.buffered = 0
        self.seen: dict[date, pl.Series] = {}
        self.stored = 0
        self.files = 0

    def write(self, batch: pl.DataFrame) -> None:
        if batch.is_empty():
            return
        self.buffer.append(batch)
        self.buffered += batch.height
        if self.buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        frame = pl.concat(self.buffer, how="vertical")
        if frame["event_id"].n_unique() < frame.height:  # counting is far cheaper than unique()
            frame = frame.unique("event_id", keep="first", maintain_order=True)
        self.buffer, self.buffered = [], 0
        frame = frame.with_columns(pl.col("time").dt.date().alias("_day"))
        for day, part in _by_day(frame):
            seen = self._seen(day)
            fresh = part.filter(~pl.col("event_id").is_in(seen.implode())).drop("_day")
            if fresh.is_empty():
                continue
            folder = self.root / f"day={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            self.files += 1
            # zstd level 1: as fast to write as lz4 here, and files about half the size.
            fresh.write_parquet(
                folder / f"part-{self.run}-{self.files:05d}.parquet",
                compression="zstd",
                compression_level=1,
            )
            self.seen[day] = pl.concat([seen, fresh["event_id"]])
            self.stored += fresh.height

    def _seen(self, day: date) -> pl.Series:
        if day not in self.seen:
            folder = self.root / f"day={day.isoformat()}"
            files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            if files:
                self.seen[day] = pl.scan_parquet(files).select("event_id").collect()["event_id"]
            else:
                self.seen[day] = pl.Series("event_id", [], dtype=pl.String)
        return self.seen[day]

    def scan(self) -> pl.LazyFrame:
        files = sorted(self.root.glob("day=*/*.parquet"))
        if not files:
            return pl.LazyFrame(schema=self.schema)
        return pl.scan_parquet(files)


def _by_day(frame: pl.DataFrame) -> Iterator[tuple[date, pl.DataFrame]]:
    """The rows of each day (``_day``), in order of first appearance, each in row order.

    A log in time order holds each day as one run of rows, taken as a slice without
    copying; otherwise the rows are gathered by day.
    """
    days = frame["_day"]
    if days.is_sorted():
        start = 0
        for length, day in days.rle().struct.unnest().iter_rows():
            yield day, frame.slice(start, length)
            start += length
        return
    for (day,), part in frame.partition_by("_day", as_dict=True, maintain_order=True).items():
        yield day, part


class ParquetArchive:
    """An ``EventSink`` writing Parquet partitioned by day; also the analytics reader."""

    def __init__(self, root: Path, *, flush_rows: int = DEFAULT_FLUSH_ROWS) -> None:
        self.root = Path(root)
        run = uuid.uuid4().hex[:12]
        self._access = _Partitioned(self.root / "access", ACCESS_EVENT_SCHEMA, flush_rows, run)
        self._signins = _Partitioned(self.root / "signin", SIGNIN_EVENT_SCHEMA, flush_rows, run)

    def write_access_events(self, batch: pl.DataFrame) -> None:
        self._access.write(batch)

    def write_signin_events(self, batch: pl.DataFrame) -> None:
        self._signins.write(batch)

    def flush(self) -> StoredCounts:
        self._access.flush()
        self._signins.flush()
        return StoredCounts(access=self._access.stored, signins=self._signins.stored)

    def scan_access_events(self) -> pl.LazyFrame:
        """All archived access events, lazily (filter by ``time`` to prune days)."""
        return self._access.scan()

    def scan_signin_events(self) -> pl.LazyFrame:
        return self._signins.scan()

    @property
    def access_glob(self) -> str:
        """A glob DuckDB's ``read_parquet`` takes, with hive partitioning by day."""
        return str(self.root / "access" / "day=*" / "*.parquet")
