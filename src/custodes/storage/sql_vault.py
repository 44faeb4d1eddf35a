"""The vault's tables over SQLAlchemy Core: the audit log (``AuditStore``) and the
wrapped scope keys (``ScopeKeyStore``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from custodes.core.ports import (
    PositionTaken,
    ScopeKeyRecord,
    StoredAuditEntry,
    StoredCheckpoint,
    WrappedKey,
)
from custodes.storage.database import reader
from custodes.storage.schema import audit_checkpoints, audit_entries, key_scopes

_SPAN_SQLITE = (
    "SELECT position, body, entry_hash FROM audit_entries "
    "WHERE position >= ? AND position < ? ORDER BY position"
)
_SPAN_PG = _SPAN_SQLITE.replace("?", "%s")


#: Appends of up to this many entries go as one autocommitted multi-row INSERT.
_ONE_STATEMENT = 64


class SqlAuditStore:
    """The append-only audit log. Appends are one transaction; positions are the key,
    so two writers racing for the same position cannot both succeed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._autocommit = self._reader is not engine
        self._pid = os.getpid()

    def append(self, entries: Sequence[StoredAuditEntry]) -> None:
        if not entries:
            return
        rows = [{"position": e.position, "body": e.body, "entry_hash": e.entry_hash} for e in entries]
        try:
            if self._autocommit and len(rows) <= _ONE_STATEMENT:
                # One multi-row INSERT is atomic by itself: one round trip, no BEGIN/COMMIT.
                with self._reader.connect() as conn:
                    conn.execute(audit_entries.insert().values(rows))
            else:
                with self._engine.begin() as conn:
                    conn.execute(audit_entries.insert(), rows)
        except IntegrityError as err:
            raise PositionTaken("another writer appended at this position") from err

    def last(self) -> StoredAuditEntry | None:
        query = sa.select(audit_entries).order_by(audit_entries.c.position.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else StoredAuditEntry(row.position, bytes(row.body), bytes(row.entry_hash))

    def count(self) -> int:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(audit_entries)).scalar_one()

    def read(self, start: int = 0, stop: int | None = None) -> list[StoredAuditEntry]:
        query = sa.select(audit_entries).where(audit_entries.c.position >= start)
        if stop is not None:
            query = query.where(audit_entries.c.position < stop)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(audit_entries.c.position)).all()
        return [StoredAuditEntry(r.position, bytes(r.body), bytes(r.entry_hash)) for r in rows]

    def columns(
        self, start: int = 0, stop: int | None = None
    ) -> tuple[list[int], list[bytes], list[bytes]]:
        # The driver's own cursor, not SQLAlchemy rows: this is the bulk read of `audit
        # verify`. psycopg is asked for binary results, so bytea arrives as bytes rather
        # than hex text to decode.
        if os.getpid() != self._pid:  # forked: never reuse the parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        query = _SPAN_PG if self._engine.dialect.name == "postgresql" else _SPAN_SQLITE
        bounds = (int(start), int(stop) if stop is not None else 2**62)
        with self._engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                if self._engine.dialect.name == "postgresql":
                    cursor.execute(query, bounds, binary=True)
                else:
                    cursor.execute(query, bounds)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        if not rows:
            return [], [], []
        positions, bodies, hashes = (list(c) for c in zip(*rows, strict=True))
        if not isinstance(bodies[0], bytes):  # memoryview on some drivers
            bodies, hashes = [bytes(b) for b in bodies], [bytes(h) for h in hashes]
        return positions, bodies, hashes

    def position_bound(self) -> int:
        with self._engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(audit_entries.c.position))).scalar()
        return 0 if top is None else int(top) + 1

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._engine.begin() as conn:
            conn.execute(audit_checkpoints.insert().values(
                size=checkpoint.size, root=checkpoint.root, last_hash=checkpoint.last_hash,
                time=checkpoint.time, signature=checkpoint.signature,
            ))  # fmt: skip

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.size)).all()
        return [
            StoredCheckpoint(r.size, bytes(r.root), bytes(r.last_hash),
                             r.time if r.time.tzinfo else r.time.replace(tzinfo=UTC),
                             bytes(r.signature))
            for r in rows
        ]  # fmt: skip


class SqlScopeKeyStore:
    """Wrapped scope keys. ``delete_patient`` deletes the rows (crypto-shredding); the
    database's own backups keep old copies until they expire (docs/vault.md)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def _record(row) -> ScopeKeyRecord:
        return ScopeKeyRecord(row.scope_id, row.scope, row.patient_id,
                              WrappedKey(row.kek_version, bytes(row.wrapped)))  # fmt: skip

    def get(self, scope_id: str) -> ScopeKeyRecord | None:
        with reader(self._engine).connect() as conn:
            row = conn.execute(sa.select(key_scopes).where(key_scopes.c.scope_id == scope_id)).first()
        return None if row is None else self._record(row)

    def put(self, record: ScopeKeyRecord) -> None:
        values = {"scope": record.scope, "patient_id": record.patient_id,
                  "kek_version": record.wrapped.version, "wrapped": record.wrapped.blob}  # fmt: skip
        with self._engine.begin() as conn:
            updated = conn.execute(
                key_scopes.update().where(key_scopes.c.scope_id == record.scope_id).values(**values)
            ).rowcount
            if not updated:
                conn.execute(key_scopes.insert().values(scope_id=record.scope_id, **values))

    def add_new(self, record: ScopeKeyRecord) -> ScopeKeyRecord:
        insert = key_scopes.insert().values(
            scope_id=record.scope_id, scope=record.scope, patient_id=record.patient_id,
            kek_version=record.wrapped.version, wrapped=record.wrapped.blob,
        )  # fmt: skip
        try:
            with self._engine.begin() as conn:
                conn.execute(insert)
        except sa.exc.IntegrityError:  # another writer made this scope's key first
            query = sa.select(key_scopes).where(key_scopes.c.scope_id == record.scope_id)
            with self._engine.connect() as conn:
                row = conn.execute(query).first()
            if row is not None:
                return self._record(row)
            with self._engine.begin() as conn:  # erased in between: ours stands
                conn.execute(insert)
        return record

    def get_many(self, scope_ids: Iterable[str]) -> dict[str, ScopeKeyRecord]:
        wanted = sorted(set(scope_ids))
        found: dict[str, ScopeKeyRecord] = {}
        with self._engine.connect() as conn:
            for at in range(0, len(wanted), 500):
                query = sa.select(key_scopes).where(key_scopes.c.scope_id.in_(wanted[at : at + 500]))
                found.update((row.scope_id, self._record(row)) for row in conn.execute(query))
        return found

    def add_new_many(self, records: Sequence[ScopeKeyRecord]) -> dict[str, ScopeKeyRecord]:
        if not records:
            return {}
        rows = [{"scope_id": r.scope_id, "scope": r.scope, "patient_id": r.patient_id,
                 "kek_version": r.wrapped.version, "wrapped": r.wrapped.blob} for r in records]  # fmt: skip
        try:
            with self._engine.begin() as conn:
                conn.execute(key_scopes.insert(), rows)
        except sa.exc.IntegrityError:  # some scope got a key from another writer: one by one
            return {r.scope_id: self.add_new(r) for r in records}
        return {r.scope_id: r for r in records}

    def all(self) -> list[ScopeKeyRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(key_scopes).order_by(key_scopes.c.scope_id)).all()
        return [self._record(r) for r in rows]

    def count_by_version(self) -> dict[int, int]:
        query = sa.select(key_scopes.c.kek_version, sa.func.count()).group_by(key_scopes.c.kek_version)
        with self._engine.connect() as conn:
            return {int(v): int(n) for v, n in conn.execute(query).all()}

    def delete_patient(self, patient_id: str) -> int:
        with self._engine.begin() as conn:
            return conn.execute(key_scopes.delete().where(key_scopes.c.patient_id == patient_id)).rowcount
