"""The hospital's context in the relational store, upserted by id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from custodes.core.entities import Department, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.quarantine import QuarantinedRecord
from custodes.storage.schema import (
    departments,
    encounters,
    ingest_runs,
    patients,
    quarantine,
    related_persons,
    staff,
)

_BATCH = 5_000


def _row(entity: Any) -> dict[str, Any]:
    row = asdict(entity)
    for key, value in row.items():
        if isinstance(value, tuple):
            row[key] = list(value)
    return row


class SqlContextStore:
    """A ``ContextStore`` over SQLAlchemy; a later load of the same id replaces it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _upsert(self, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
        key = [c.name for c in table.primary_key.columns]
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        total = 0
        batch: list[dict[str, Any]] = []

        def send() -> None:
            nonlocal total
            # One row per key per statement: PostgreSQL refuses to update a row twice.
            unique = list({tuple(r[k] for k in key): r for r in batch}.values())
            statement = insert(table).values(unique)
            updates = {
                c.name: statement.excluded[c.name] for c in table.columns if c.name not in key
            }
            with self.engine.begin() as connection:
                connection.execute(
                    statement.on_conflict_do_update(index_elements=key, set_=updates)
                )
            total += len(unique)
            batch.clear()

        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                send()
        if batch:
            send()
        return total

    def upsert_staff(self, members: Iterable[StaffMember]) -> int:
        return self._upsert(staff, (_row(m) for m in members))

    def upsert_patients(self, people: Iterable[Patient]) -> int:
        return self._upsert(patients, (_row(p) for p in people))

    def upsert_encounters(self, visits: Iterable[Encounter]) -> int:
        return self._upsert(encounters, (_row(e) for e in visits))

    def upsert_related_persons(self, related: Iterable[RelatedPerson]) -> int:
        return self._upsert(related_persons, (_row(r) for r in related))

    def upsert_departments(self, units: Iterable[Department]) -> int:
        return self._upsert(departments, (_row(d) for d in units))

    def counts(self) -> dict[str, int]:
        """Rows per context table, for reports and the demo."""
        tables = {
            "staff": staff,
            "patients": patients,
            "encounters": encounters,
            "related_persons": related_persons,
            "departments": departments,
        }
        with self.engine.connect() as connection:
            return {
                name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for name, t in tables.items()
            }


class QuarantineStore:
    """A ``QuarantineSink`` writing both a table row and a line of an NDJSON file.

    The file (``<folder>/<run id>.ndjson``) is readable by its owner only: quarantined
    lines are raw input and may hold PHI.
    """

    def __init__(self, engine: Engine, folder: Path, run_id: str) -> None:
        self.engine = engine
        self.path = Path(folder) / f"{run_id}.ndjson"
        self.run_id = run_id
        self.count = 0

    def quarantine(self, records: Sequence[QuarantinedRecord]) -> None:
        if not records:
            return
        rows = [{**asdict(r), "run_id": self.run_id} for r in records]
        with self.engine.begin() as connection:
            for start in range(0, len(rows), _BATCH):
                connection.execute(quarantine.insert(), rows[start : start + _BATCH])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        is_new = not self.path.exists()
        with open(self.path, "ab") as handle:
            if is_new:
                self.path.chmod(0o600)
            handle.writelines(orjson.dumps(r) + b"\n" for r in rows)
        self.count += len(rows)


class SqlIngestRuns:
    """The record of every ingest run: when, what, and the counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, run_id: str, kind: str, sources: list[str], at: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                ingest_runs.insert().values(run_id=run_id, kind=kind, started_at=at, sources=sources,
                                            read=0, accepted=0, quarantined=0, duplicates=0)
            )  # fmt: skip

    def finish(self, run_id: str, at: datetime, **counts: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                ingest_runs.update()
                .where(ingest_runs.c.run_id == run_id)
                .values(finished_at=at, **counts)
            )

    def quarantined(self, run_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined records in the order they came, without their raw text."""
        query = sa.select(
            quarantine.c.run_id, quarantine.c.source_format, quarantine.c.source_file,
            quarantine.c.line, quarantine.c.reason,
        ).order_by(quarantine.c.id).limit(limit)  # fmt: skip
        if run_id is not None:
            query = query.where(quarantine.c.run_id == run_id)
        with self.engine.connect() as connection:
            # str(): SQLAlchemy names are a str subclass, which orjson refuses as keys.
            return [{str(k): v for k, v in r._mapping.items()} for r in connection.execute(query)]
