"""The in-memory ``RecordStore``, for unit tests and dry runs (never the product)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from custodes.core.ports import IndexEntry, StoredRecord, VersionConflict


class MemoryRecordStore:
    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], list[StoredRecord]] = {}
        self._index: dict[tuple[str, str], set[IndexEntry]] = {}
        self._lock = threading.Lock()

    def latest(self, resource_type: str, record_id: str) -> StoredRecord | None:
        versions = self._versions.get((resource_type, record_id))
        return versions[-1] if versions else None

    def version(self, resource_type: str, record_id: str, version: int) -> StoredRecord | None:
        for stored in self._versions.get((resource_type, record_id), ()):
            if stored.version == version:
                return stored
        return None

    def latest_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return {key: self._versions[key][-1] for key in keys if self._versions.get(key)}

    def write(self, records: Sequence[StoredRecord], index: Sequence[IndexEntry] = ()) -> None:
        with self._lock:
            seen: set[tuple[str, str, int]] = set()
            for r in records:
                key = (r.resource_type, r.record_id, r.version)
                if key in seen or self.version(*key) is not None:
                    raise VersionConflict("a version of this record was stored by another writer")
                seen.add(key)
            for r in records:
                self._versions.setdefault((r.resource_type, r.record_id), []).append(r)
                self._versions[(r.resource_type, r.record_id)].sort(key=lambda s: s.version)
                self._index.pop((r.resource_type, r.record_id), None)
            for entry in index:
                self._index.setdefault((entry.resource_type, entry.record_id), set()).add(entry)

    def _current(self) -> Iterable[StoredRecord]:
        for versions in self._versions.values():
            if versions and not versions[-1].deleted:
                yield versions[-1]

    def by_patient(self, patient_id: str, resource_types: Iterable[str] | None = None) -> list[StoredRecord]:
        types = None if resource_types is None else set(resource_types)
        found = [
            r for r in self._current() if r.patient_id == patient_id and (types is None or r.resource_type in types)
        ]
        return sorted(found, key=lambda r: (r.last_updated, r.resource_type, r.record_id))

    def of_type(self, resource_type: str, limit: int) -> list[StoredRecord]:
        found = sorted((r for r in self._current() if r.resource_type == resource_type), key=lambda r: r.record_id)
        return found[:limit]

    def find(self, purpose: str, digest: str, resource_type: str) -> list[str]:
        return sorted(
            e.record_id
            for entries in self._index.values()
            for e in entries
            if (e.purpose, e.digest, e.resource_type) == (purpose, digest, resource_type)
        )

    def erase_patient(self, patient_id: str) -> int:
        with self._lock:
            doomed = [k for k, v in self._versions.items() if v and v[-1].patient_id == patient_id]
            erased = sum(len(self._versions.pop(k)) for k in doomed)
            for key in [k for k, entries in self._index.items() if any(e.patient_id == patient_id for e in entries)]:
                del self._index[key]
        return erased

    def count(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self._current():
            counts[r.resource_type] = counts.get(r.resource_type, 0) + 1
        return counts
