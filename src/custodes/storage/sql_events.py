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
        return self._insert_sqlite(table, batch)

    def _insert_sqlite(self, table: sa.Table, batch: pl.DataFrame) -> int:
        # Plain tuples through the driver: SQLAlchemy's per-row dict processing costs
        # more than SQLite's own insert. Values are rendered as SQLAlchemy would store
        # them (times as naive UTC text, booleans as 0/1), so reads through it agree.
        rendered = batch.with_columns(
            [
                pl.col(c.name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
                for c in table.columns
                if isinstance(c.type, sa.DateTime)
            ]
            + [
                pl.col(c.name).cast(pl.Int8)
                for c in table.columns
                if isinstance(c.type, sa.Boolean)
            ]
        )
        columns = ", ".join(f'"{c}"' for c in rendered.columns)
        marks = ", ".join("?" for _ in rendered.columns)
        statement = f'INSERT OR IGNORE INTO "{table.name}" ({columns}) VALUES ({marks})'  # noqa: S608
        with self.engine.begin() as connection:
            before = connection.exec_driver_sql("SELECT total_changes()").scalar_one()
            connection.exec_driver_sql(statement, rendered.rows())
            after = connection.exec_driver_sql("SELECT total_changes()").scalar_one()
        return after - before

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
