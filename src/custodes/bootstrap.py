"""The composition root: read settings once, build the adapters, wire the services.

Nothing else in Custodes reads the environment. The CLI (and later the API) ask this
module for a ready ``Custodes`` and call its use cases.
"""

from __future__ import annotations

import ctypes
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Engine

from custodes.core.clock import Clock, SystemClock
from custodes.core.errors import ConfigurationError
from custodes.ingest.context_service import ContextReport, ingest_context_files
from custodes.ingest.csv_access import CsvMapping
from custodes.ingest.service import IngestReport, Progress, ingest_event_files
from custodes.storage.archive import ParquetArchive
from custodes.storage.database import create_engine, ensure_schema, upgrade
from custodes.storage.sql_context import QuarantineStore, SqlContextStore, SqlIngestRuns
from custodes.storage.sql_events import SqlEventStore

EVENT_STORES = ("archive", "database")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@cache
def tune_memory_allocator() -> bool:
    """Let glibc keep and reuse large freed blocks instead of returning them at once.

    Ingestion allocates and frees a 48 MB block of input many times a second; by
    default glibc maps each one fresh from the kernel and unmaps it when freed, and the
    page faults cost a quarter of the CPU time. Keeping up to 256 MB for reuse cut them by
    almost half and the ingest time by about 12% (benchmarks/RESULTS.md). Process-wide,
    so it is set here, at the composition root, once; elsewhere than glibc it does
    nothing and says so by returning False.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024 * 1024)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 256 * 1024 * 1024)
    except (OSError, AttributeError):
        return False
    return bool(ok)


class Settings(BaseSettings):
    """Settings from ``CUSTODES_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="CUSTODES_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("custodes", appauthor=False)),
        description="Where the embedded database, the Parquet archive and the quarantine live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite in the data directory. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    nats_url: str | None = Field(
        default=None, description="NATS JetStream server, when scaled out."
    )
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    event_stores: tuple[str, ...] = Field(
        default=EVENT_STORES, description="Where accepted events go: archive, database or both."
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'custodes.db'}"


@dataclass
class IngestRun:
    run_id: str
    report: IngestReport


@dataclass
class ContextRun:
    run_id: str
    report: ContextReport


class Custodes:
    """The application, wired: the one object the edges talk to."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()

    @property
    def data_dir(self) -> Path:
        path = self.settings.data_dir
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
        elif not path.is_dir():
            raise ConfigurationError(f"data directory {path} is not a directory")
        return path

    @cached_property
    def engine(self) -> Engine:
        self.data_dir  # noqa: B018 - the SQLite file lives there
        return create_engine(self.settings.resolved_database_url)

    def upgrade_database(self) -> str:
        return upgrade(self.engine)

    def ready_engine(self) -> Engine:
        ensure_schema(self.engine)
        return self.engine

    @cached_property
    def archive(self) -> ParquetArchive:
        return ParquetArchive(self.data_dir / "archive")

    def context_store(self) -> SqlContextStore:
        return SqlContextStore(self.ready_engine())

    def ingest_events(
        self,
        paths: Sequence[Path],
        *,
        fmt: str | None = None,
        mapping: Path | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> IngestRun:
        tune_memory_allocator()
        engine = self.ready_engine()
        run_id = uuid.uuid4().hex[:16]
        runs = SqlIngestRuns(engine)
        runs.start(run_id, "events", [str(p) for p in paths], self.clock.now())
        unknown = set(self.settings.event_stores) - set(EVENT_STORES)
        if unknown or not self.settings.event_stores:
            raise ConfigurationError(
                f"CUSTODES_EVENT_STORES must name archive and/or database, not {sorted(unknown)}"
            )
        sinks = []
        if "archive" in self.settings.event_stores:
            sinks.append(ParquetArchive(self.data_dir / "archive"))
        if "database" in self.settings.event_stores:
            sinks.append(SqlEventStore(engine))
        report = ingest_event_files(
            paths,
            sinks,
            QuarantineStore(engine, self.data_dir / "quarantine", run_id),
            fmt=fmt,
            mapping=CsvMapping.load(mapping) if mapping else None,
            workers=workers or self.settings.workers,
            progress=progress,
        )
        runs.finish(run_id, self.clock.now(), **report.as_json())
        return IngestRun(run_id, report)

    def ingest_context(
        self, paths: Sequence[Path], *, fmt: str | None = None, progress: Progress | None = None
    ) -> ContextRun:
        engine = self.ready_engine()
        run_id = uuid.uuid4().hex[:16]
        runs = SqlIngestRuns(engine)
        runs.start(run_id, "context", [str(p) for p in paths], self.clock.now())
        report = ingest_context_files(
            paths,
            SqlContextStore(engine),
            QuarantineStore(engine, self.data_dir / "quarantine", run_id),
            fmt=fmt,
            progress=progress,
        )
        runs.finish(run_id, self.clock.now(), **report.as_json())
        return ContextRun(run_id, report)
