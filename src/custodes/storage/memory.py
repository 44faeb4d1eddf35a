"""In-memory adapters of the core ports, for unit tests and dry runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from custodes.core.entities import Department, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.events import empty_access_events, empty_signin_events
from custodes.core.ports import StoredCounts
from custodes.core.quarantine import QuarantinedRecord


class MemoryEventSink:
    """Keeps events in data frames, one copy per event id."""

    def __init__(self) -> None:
        self.access = empty_access_events()
        self.signins = empty_signin_events()
        self._counts = StoredCounts()

    @staticmethod
    def _merge(store: pl.DataFrame, batch: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        fresh = batch.unique("event_id", keep="first", maintain_order=True).filter(
            ~pl.col("event_id").is_in(store["event_id"].implode())
        )
        return pl.concat([store, fresh.select(store.columns)]), fresh.height

    def write_access_events(self, batch: pl.DataFrame) -> None:
        self.access, new = self._merge(self.access, batch)
        self._counts = StoredCounts(self._counts.access + new, self._counts.signins)

    def write_signin_events(self, batch: pl.DataFrame) -> None:
        self.signins, new = self._merge(self.signins, batch)
        self._counts = StoredCounts(self._counts.access, self._counts.signins + new)

    def flush(self) -> StoredCounts:
        return self._counts


class MemoryQuarantine:
    def __init__(self) -> None:
        self.records: list[QuarantinedRecord] = []

    def quarantine(self, records: Sequence[QuarantinedRecord]) -> None:
        self.records.extend(records)


class MemoryContextStore:
    """A dict per entity kind, keyed by id; a later entity with the same id replaces it."""

    def __init__(self) -> None:
        self.staff: dict[str, StaffMember] = {}
        self.patients: dict[str, Patient] = {}
        self.encounters: dict[str, Encounter] = {}
        self.related_persons: dict[str, RelatedPerson] = {}
        self.departments: dict[str, Department] = {}

    def upsert_staff(self, staff: Iterable[StaffMember]) -> int:
        return _put(self.staff, staff, "staff_id")

    def upsert_patients(self, patients: Iterable[Patient]) -> int:
        return _put(self.patients, patients, "patient_id")

    def upsert_encounters(self, encounters: Iterable[Encounter]) -> int:
        return _put(self.encounters, encounters, "encounter_id")

    def upsert_related_persons(self, related: Iterable[RelatedPerson]) -> int:
        return _put(self.related_persons, related, "related_id")

    def upsert_departments(self, departments: Iterable[Department]) -> int:
        return _put(self.departments, departments, "department_id")


def _put(store: dict, items: Iterable, key: str) -> int:
    count = 0
    for item in items:
        store[getattr(item, key)] = item
        count += 1
    return count
