"""The vault's sealed records and blind indexes (``RecordStore``) on SQLite and PostgreSQL.

Every version is a row; ``current`` marks the newest one of each record so reads by
patient or type touch one index. A write stores a batch of versions and their index
entries in one transaction: all of it or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from custodes.core.ports import IndexEntry, StoredRecord, VersionConflict
from custodes.storage.database import reader
from custodes.storage.schema import encounters, vault_index, vault_records

_R = vault_records.c
_COLUMNS = (
    _R.resource_type, _R.record_id, _R.version, _R.patient_id, _R.tier, _R.scope_id,
    _R.wrapped_key, _R.ciphertext, _R.last_updated, _R.deleted,
)  # fmt: skip
#: Rows per statement when reading many records by key (SQLite allows 32,766 parameters).
_KEYS_PER_QUERY = 400


def _record(row) -> StoredRecord:
    updated = row.last_updated
    if updated.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        updated = updated.replace(tzinfo=UTC)
    return StoredRecord(
        row.resource_type, row.record_id, row.version, row.patient_id, row.tier, row.scope_id,
        bytes(row.wrapped_key), bytes(row.ciphertext), updated, bool(row.deleted),
    )  # fmt: skip


class SqlRecordStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._latest = (
            sa.select(*_COLUMNS)
            .where(_R.resource_type == sa.bindparam("t"), _R.record_id == sa.bindparam("i"))
            .order_by(_R.version.desc())
            .limit(1)
        )
        # Built once: building a statement costs more than SQLite takes to run it.
        patients = (_R.patient_id == sa.bindparam("p"), _R.current.is_(True), _R.deleted.is_(False))
        order = (_R.last_updated, _R.resource_type, _R.record_id)
        self._by_patient = sa.select(*_COLUMNS).where(*patients).order_by(*order)
        self._by_patient_types = (
            sa.select(*_COLUMNS)
            .where(*patients, _R.resource_type.in_(sa.bindparam("types", expanding=True)))
            .order_by(*order)
        )

    def latest(self, resource_type: str, record_id: str) -> StoredRecord | None:
        with self._reader.connect() as conn:
            row = conn.execute(self._latest, {"t": resource_type, "i": record_id}).first()
        return None if row is None else _record(row)

    def version(self, resource_type: str, record_id: str, version: int) -> StoredRecord | None:
        query = sa.select(*_COLUMNS).where(
            _R.resource_type == resource_type, _R.record_id == record_id, _R.version == version
        )
        with self._reader.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def latest_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        # By id alone (one index, a plain IN list), then matched to the types asked for:
        # a tuple IN over (type, id) costs more to compile than to run.
        wanted = set(keys)
        ids = sorted({record_id for _type, record_id in wanted})
        found: dict[tuple[str, str], StoredRecord] = {}
        with self._reader.connect() as conn:
            for start in range(0, len(ids), _KEYS_PER_QUERY):
                query = sa.select(*_COLUMNS).where(
                    _R.record_id.in_(ids[start : start + _KEYS_PER_QUERY]), _R.current.is_(True)
                )
                for row in conn.execute(query):
                    if (row.resource_type, row.record_id) in wanted:
                        found[(row.resource_type, row.record_id)] = _record(row)
        return found

    def write(self, records: Sequence[StoredRecord], index: Sequence[IndexEntry] = ()) -> None:
        if not records:
            return
        superseded = [
            {"t": r.resource_type, "i": r.record_id, "v": r.version} for r in records if r.version > 1
        ]
        keys = {(r.resource_type, r.record_id) for r in records}
        try:
            with self._engine.begin() as conn:
                if superseded:
                    conn.execute(
                        vault_records.update()
                        .where(
                            _R.resource_type == sa.bindparam("t"),
                            _R.record_id == sa.bindparam("i"),
                            _R.version < sa.bindparam("v"),
                            _R.current.is_(True),
                        )
                        .values(current=False),
                        superseded,
                    )
                    stale = [{"t": t, "i": i} for t, i in keys]
                    conn.execute(
                        vault_index.delete().where(
                            vault_index.c.resource_type == sa.bindparam("t"),
                            vault_index.c.record_id == sa.bindparam("i"),
                        ),
                        stale,
                    )
                conn.execute(
                    vault_records.insert(),
                    [
                        {
                            "resource_type": r.resource_type, "record_id": r.record_id,
                            "version": r.version, "patient_id": r.patient_id, "tier": r.tier,
                            "scope_id": r.scope_id, "wrapped_key": r.wrapped_key,
                            "ciphertext": r.ciphertext, "last_updated": r.last_updated,
                            "deleted": r.deleted, "current": True,
                        }  # fmt: skip
                        for r in records
                    ],
                )
                if index:
                    conn.execute(
                        vault_index.insert(),
                        [
                            {"purpose": e.purpose, "digest": e.digest, "resource_type": e.resource_type,
                             "record_id": e.record_id, "patient_id": e.patient_id}  # fmt: skip
                            for e in dict.fromkeys(index)
                        ],
                    )
        except IntegrityError as err:
            raise VersionConflict("a version of this record was stored by another writer") from err

    def by_patient(self, patient_id: str, resource_types: Iterable[str] | None = None) -> list[StoredRecord]:
        with self._reader.connect() as conn:
            if resource_types is None:
                rows = conn.execute(self._by_patient, {"p": patient_id}).all()
            else:
                rows = conn.execute(self._by_patient_types, {"p": patient_id, "types": sorted(set(resource_types))}).all()
        return [_record(row) for row in rows]

    def of_type(self, resource_type: str, limit: int) -> list[StoredRecord]:
        query = (
            sa.select(*_COLUMNS)
            .where(_R.resource_type == resource_type, _R.current.is_(True), _R.deleted.is_(False))
            .order_by(_R.record_id)
            .limit(limit)
        )
        with self._reader.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def find(self, purpose: str, digest: str, resource_type: str) -> list[str]:
        c = vault_index.c
        query = (
            sa.select(c.record_id)
            .where(c.purpose == purpose, c.digest == digest, c.resource_type == resource_type)
            .order_by(c.record_id)
        )
        with self._reader.connect() as conn:
            return [row.record_id for row in conn.execute(query)]

    def erase_patient(self, patient_id: str) -> int:
        with self._engine.begin() as conn:
            conn.execute(vault_index.delete().where(vault_index.c.patient_id == patient_id))
            return conn.execute(vault_records.delete().where(_R.patient_id == patient_id)).rowcount

    def count(self) -> dict[str, int]:
        query = (
            sa.select(_R.resource_type, sa.func.count())
            .where(_R.current.is_(True), _R.deleted.is_(False))
            .group_by(_R.resource_type)
        )
        with self._reader.connect() as conn:
            return {t: n for t, n in conn.execute(query)}


class SqlCareRelationships:
    """Does a user have a documented treatment relationship with a patient?

    Answered from the hospital context (``custodes ingest context``): the user attended
    one of the patient's encounters or is on its care team. A user's account name is
    their staff id in the roster.
    """

    def __init__(self, engine: Engine) -> None:
        c = encounters.c
        member = sa.cast(c.care_team, sa.String).like(sa.bindparam("quoted"), escape="\\")
        self._reader = reader(engine)
        self._query = (
            sa.select(sa.literal(1))
            .where(c.patient_id == sa.bindparam("p"), sa.or_(c.attending_id == sa.bindparam("u"), member))
            .limit(1)
        )

    def __call__(self, user_id: str, patient_id: str) -> bool:
        quoted = '%"' + user_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
        with self._reader.connect() as conn:
            return conn.execute(self._query, {"p": patient_id, "u": user_id, "quoted": quoted}).first() is not None
