"""Access and sign-in events in the relational store, deduplicated by event id.

PostgreSQL gets a ``COPY`` into a temporary table and one ``INSERT ... ON CONFLICT DO
NOTHING``, which is an order of magnitude faster than row inserts; SQLite gets
``INSERT OR IGNORE``. Either way, writing an event twice stores it once.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custodes.core.ports import StoredCounts
from custodes.storage.schema import access_events, signin_events


class SqlEventStore:
    """An ``EventSink`` over SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._access = 0
        self._signins = 0

    def write_access_events(self, batch: pl.DataFrame) -> None:
        self._access += self._write(access_events, batch)

    def write_signin_events(self, batch: pl.DataFrame) -> None:
        self._signins += self._write(signin_events, batch)

    def flush(self) -> StoredCounts:
        return StoredCounts(access=self._access, signins=self._signins)

    def _write(self, table: sa.Table, batch: pl.DataFrame) -> int:
        if batch.is_empty():
            return 0
        batch = batch.select([c.name for c in table.columns])
        if self.engine.dialect.name == "postgresql":
            return self._copy_postgres(table, batch)
        rows = batch.to_dicts()
        statement = table.insert().prefix_with("OR IGNORE")
        with self.engine.begin() as connection:
            result = connection.execute(statement, rows)
            return max(result.rowcount, 0)

    def _copy_postgres(self, table: sa.Table, batch: pl.DataFrame) -> int:
        columns = ", ".join(f'"{c}"' for c in batch.columns)
        staging = f"_incoming_{table.name}"
        data = batch.write_csv(include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6f%:z")
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(
                    f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" '
                    f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
                )
                with cursor.copy(
                    f'COPY "{staging}" ({columns}) FROM STDIN WITH (FORMAT csv)'
                ) as copy:
                    copy.write(data)
                # Names come from the schema module, never from input.
                insert = f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM "{staging}"'  # noqa: S608
                cursor.execute(insert + " ON CONFLICT DO NOTHING")
                inserted = cursor.rowcount
            raw.commit()
        except Exception:
            raw.rollback()
            raise
        finally:
            raw.close()
        return max(inserted, 0)

    def count_access_events(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(access_events)
            ).scalar_one()

    def count_signin_events(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(signin_events)
            ).scalar_one()
