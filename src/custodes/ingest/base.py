"""The reader contract every event format implements, and the chunked file walk.

A reader is configuration only (picklable, so worker processes can run it). Its one
piece of work is ``parse_lines``: a list of raw lines in, a ``ChunkResult`` out. The
file walk around it (plain or gzip, sequential or across worker processes, line
numbers, ordered results) is shared by every reader.
"""

from __future__ import annotations

import gc
import gzip
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import ClassVar

import polars as pl

from custodes.core.errors import InputFormatError
from custodes.core.events import empty_access_events, empty_signin_events
from custodes.core.quarantine import QuarantinedRecord

#: Lines per chunk: big enough to amortise the hand-off to a worker, small enough
#: that memory stays flat whatever the file size.
DEFAULT_CHUNK_LINES = 20_000
_CHUNK_BYTES_HINT = 16 * 1024 * 1024


@dataclass
class ChunkResult:
    """What a reader made of one chunk of lines.

    ``source_line`` columns and quarantine line numbers are absolute (1-based in the
    file) once the file walk has rebased them.
    """

    access: pl.DataFrame = field(default_factory=empty_access_events)
    signins: pl.DataFrame = field(default_factory=empty_signin_events)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    lines_read: int = 0
    bytes_read: int = 0

    @property
    def records_read(self) -> int:
        return self.access.height + self.signins.height + len(self.quarantined)

    def rebased(self, offset: int) -> ChunkResult:
        """The same result with every line number moved down by ``offset``."""
        if offset == 0:
            return self
        line = pl.col("source_line") + offset
        return ChunkResult(
            access=self.access.with_columns(line),
            signins=self.signins.with_columns(line),
            quarantined=[
                QuarantinedRecord(q.source_format, q.source_file, q.line + offset, q.reason, q.raw)
                for q in self.quarantined
            ],
            lines_read=self.lines_read,
            bytes_read=self.bytes_read,
        )


def decode_raw(line: bytes) -> str:
    """The text of a raw line for the quarantine, whatever its encoding."""
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around allocation-heavy parsing.

    Parsing a chunk allocates hundreds of thousands of short-lived containers, none
    of them in cycles; with the collector on, CPython rescans them repeatedly and
    parsing runs several times slower.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class EventReader(ABC):
    """Base class of every access-log reader.

    Subclasses set ``format_name`` and implement ``parse_lines``; they may override
    ``read`` for formats that are not line-oriented (a FHIR Bundle).
    """

    format_name: ClassVar[str]

    @abstractmethod
    def parse_lines(self, lines: Sequence[bytes], source_file: str) -> ChunkResult:
        """Parse raw lines (numbered 1.. within the chunk) into events and rejects."""

    def header_lines(self, path: Path) -> int:
        """How many lines at the top of the file are not records (a CSV header)."""
        return 0

    def read(
        self, path: Path, *, workers: int = 1, chunk_lines: int = DEFAULT_CHUNK_LINES
    ) -> Iterator[ChunkResult]:
        """Read a whole file, yielding results chunk by chunk, in file order."""
        skip = self.header_lines(path)
        if workers > 1 and not is_gzip(path):
            yield from _read_parallel(self, path, skip, workers, chunk_lines)
        else:
            yield from _read_sequential(self, path, skip, chunk_lines)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def sniff_format(path: Path) -> str:
    """``fhir`` when the file starts with JSON, ``csv`` otherwise.

    Gzip is looked through and a byte-order mark skipped; an empty file is an error.
    """
    with open_source(path) as handle:
        head = handle.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise InputFormatError(f"{path.name} is empty")
    return "fhir" if head[:1] in (b"{", b"[") else "csv"


def open_source(path: Path):
    """Open a file for binary reading, transparently un-gzipping it."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _read_sequential(
    reader: EventReader, path: Path, skip: int, chunk_lines: int
) -> Iterator[ChunkResult]:
    with open_source(path) as handle:
        for _ in range(skip):
            handle.readline()
        offset = skip
        while True:
            lines = (
                handle.readlines(_CHUNK_BYTES_HINT)
                if chunk_lines <= 0
                else _take(handle, chunk_lines)
            )
            if not lines:
                return
            with gc_paused():
                result = reader.parse_lines(lines, path.name)
            result.lines_read = len(lines)
            result.bytes_read = sum(map(len, lines))
            yield result.rebased(offset)
            offset += len(lines)


def _take(handle, count: int) -> list[bytes]:
    lines = []
    for line in handle:
        lines.append(line)
        if len(lines) >= count:
            break
    return lines


def _chunk_ranges(path: Path, skip: int, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """Byte ranges that start and end on line boundaries, after ``skip`` lines."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        for _ in range(skip):
            handle.readline()
        start = handle.tell()
        while start < size:
            handle.seek(min(start + chunk_bytes, size))
            if handle.tell() < size:
                handle.readline()
            end = handle.tell()
            yield start, end
            start = end


def _parse_range(reader: EventReader, path: str, start: int, end: int) -> ChunkResult:
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    lines = data.splitlines(keepends=True)
    with gc_paused():
        result = reader.parse_lines(lines, os.path.basename(path))
    result.lines_read = len(lines)
    result.bytes_read = end - start
    return result


def _read_parallel(
    reader: EventReader, path: Path, skip: int, workers: int, chunk_lines: int
) -> Iterator[ChunkResult]:
    # Spawned, not forked: Polars' thread pool does not survive a fork.
    # Workers read their own byte range, so only offsets cross the process boundary
    # on the way out; results come back in file order, at most 2 per worker in flight.
    chunk_bytes = max(64 * 1024, chunk_lines * _average_line_length(path, skip))
    ranges = _chunk_ranges(path, skip, chunk_bytes)
    pending: deque[Future[ChunkResult]] = deque()
    offset = skip
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for start, end in ranges:
            pending.append(pool.submit(_parse_range, reader, str(path), start, end))
            if len(pending) >= 2 * workers:
                result = pending.popleft().result()
                yield result.rebased(offset)
                offset += result.lines_read
        while pending:
            result = pending.popleft().result()
            yield result.rebased(offset)
            offset += result.lines_read


def _average_line_length(path: Path, skip: int) -> int:
    with open(path, "rb") as handle:
        for _ in range(skip):
            handle.readline()
        sample = handle.read(1024 * 1024)
    lines = sample.count(b"\n")
    return max(16, len(sample) // lines) if lines else 1024
