"""Ports: the narrow interfaces through which the domain reaches storage and buses.

Each has an in-memory adapter for unit tests (``custodes.storage.memory``) and real
adapters tested against real servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from custodes.core.entities import Department, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.quarantine import QuarantinedRecord


@dataclass(frozen=True, slots=True)
class StoredCounts:
    """How many events a sink has newly stored (duplicates of stored ones excluded)."""

    access: int = 0
    signins: int = 0


class EventSink(Protocol):
    """Somewhere accepted events are kept. Writing the same event twice keeps one.

    A sink may buffer; ``flush`` makes everything written so far durable and returns
    the counts of new events since the sink was created.
    """

    def write_access_events(self, batch: pl.DataFrame) -> None:
        """Store a batch with the columns of ``ACCESS_EVENT_SCHEMA``."""
        ...

    def write_signin_events(self, batch: pl.DataFrame) -> None:
        """Store a batch with the columns of ``SIGNIN_EVENT_SCHEMA``."""
        ...

    def flush(self) -> StoredCounts: ...


class QuarantineSink(Protocol):
    """Somewhere unusable input is kept with its reason."""

    def quarantine(self, records: Sequence[QuarantinedRecord]) -> None: ...


class ContextStore(Protocol):
    """The hospital's context: roster, patients, encounters, relations, departments."""

    def upsert_staff(self, staff: Iterable[StaffMember]) -> int: ...

    def upsert_patients(self, patients: Iterable[Patient]) -> int: ...

    def upsert_encounters(self, encounters: Iterable[Encounter]) -> int: ...

    def upsert_related_persons(self, related: Iterable[RelatedPerson]) -> int: ...

    def upsert_departments(self, departments: Iterable[Department]) -> int: ...


class EventBus(Protocol):
    """A publish/subscribe bus of byte messages on dotted subjects."""

    async def publish(self, subject: str, payload: bytes) -> None: ...

    async def fetch(self, subject: str, durable: str, batch: int, timeout: float) -> list[bytes]:
        """Fetch up to ``batch`` messages for a durable consumer, acknowledging them."""
        ...
