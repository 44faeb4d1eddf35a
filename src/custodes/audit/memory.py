"""The in-memory ``AuditStore``, for tests, dry runs and the demo's tampered copy."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from custodes.core.ports import PositionTaken, StoredAuditEntry, StoredCheckpoint


class MemoryAuditStore:
    """Entries in a list; append-only through the port (tests reach in to tamper)."""

    def __init__(self, entries: Sequence[StoredAuditEntry] = (),
                 checkpoints: Sequence[StoredCheckpoint] = ()) -> None:  # fmt: skip
        self.entries: list[StoredAuditEntry] = list(entries)
        self.saved_checkpoints: list[StoredCheckpoint] = list(checkpoints)
        self._lock = threading.Lock()

    def append(self, entries: Sequence[StoredAuditEntry]) -> None:
        with self._lock:
            expected = len(self.entries)
            for offset, entry in enumerate(entries):
                if entry.position < expected + offset:
                    raise PositionTaken("another writer appended at this position")
                if entry.position != expected + offset:
                    raise ValueError("audit entries are appended in position order")
            self.entries.extend(entries)

    def last(self) -> StoredAuditEntry | None:
        return self.entries[-1] if self.entries else None

    def count(self) -> int:
        return len(self.entries)

    def read(self, start: int = 0, stop: int | None = None) -> list[StoredAuditEntry]:
        return [e for e in self.entries if e.position >= start and (stop is None or e.position < stop)]

    def columns(
        self, start: int = 0, stop: int | None = None
    ) -> tuple[list[int], list[bytes], list[bytes]]:
        rows = self.entries if start == 0 and stop is None else self.read(start, stop)
        return [e.position for e in rows], [e.body for e in rows], [e.entry_hash for e in rows]

    def position_bound(self) -> int:
        return max((e.position for e in self.entries), default=-1) + 1

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        self.saved_checkpoints.append(checkpoint)

    def checkpoints(self) -> list[StoredCheckpoint]:
        return list(self.saved_checkpoints)
