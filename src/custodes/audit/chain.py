"""The audit chain: entries, their canonical bytes, the hash links and their verification.

Entry ``i`` is stored as its canonical JSON body (sorted keys, no whitespace, UTF-8,
no floats) with the hash ``h_i = SHA-256(h_{i-1} || u64be(i) || body_i)``, where
``h_{-1}`` is 32 zero bytes. The position is hashed, so a row moved, removed or
inserted breaks the chain where it happened. What is hashed is exactly what is stored:
a verifier re-hashes bytes and never re-serialises anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import orjson

from custodes.core.events import Action, Outcome
from custodes.core.ports import StoredAuditEntry

GENESIS = bytes(32)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited act: a read, search, create, update, delete, export, denial or
    break-the-glass access (or an administrative act such as a key rotation).

    ``allowed`` is False for a denied attempt; ``break_the_glass`` marks emergency
    access, with the ``reason`` the user stated; ``review`` queues it for a privacy
    officer. ``detail`` holds short machine strings (never PHI, never secrets).
    """

    time: datetime
    actor: str
    action: Action
    outcome: Outcome = Outcome.SUCCESS
    allowed: bool = True
    role: str | None = None
    patient_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    purpose_of_use: str | None = None
    break_the_glass: bool = False
    reason: str | None = None
    review: bool = False
    session_id: str | None = None
    source_ip: str | None = None
    detail: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("AuditEntry.time must be timezone-aware")

    def body(self) -> bytes:
        """The canonical JSON bytes that are stored and hashed."""
        doc: dict[str, Any] = {}
        for name in _FIELDS:  # not dataclasses.asdict: it deep-copies, at ten times the cost
            value = getattr(self, name)
            if value is not None and value != {}:
                doc[name] = value
        doc["time"] = self.time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        doc["action"] = str(self.action)
        doc["outcome"] = str(self.outcome)
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_body(cls, body: bytes) -> AuditEntry:
        doc = orjson.loads(body)
        doc["time"] = datetime.fromisoformat(doc["time"].replace("Z", "+00:00"))
        doc["action"] = Action(doc["action"])
        doc["outcome"] = Outcome(doc["outcome"])
        return cls(**doc)


_FIELDS = tuple(f.name for f in fields(AuditEntry))


def link_hash(previous: bytes, position: int, body: bytes) -> bytes:
    return hashlib.sha256(previous + position.to_bytes(8, "big") + body).digest()


def chain(entries: Sequence[AuditEntry], start: int = 0, previous: bytes = GENESIS) -> list[StoredAuditEntry]:
    """Link ``entries`` onto a chain whose last hash is ``previous`` at ``start - 1``."""
    linked = []
    for offset, entry in enumerate(entries):
        body = entry.body()
        previous = link_hash(previous, start + offset, body)
        linked.append(StoredAuditEntry(start + offset, body, previous))
    return linked


def first_broken_link(
    positions: Sequence[int],
    bodies: Sequence[bytes],
    hashes: Sequence[bytes],
    start: int = 0,
    previous: bytes = GENESIS,
) -> int | None:
    """The first position whose stored hash does not follow from the row before it.

    Each row is checked against the *stored* hash of its predecessor, so any span of
    the log can be checked on its own (in parallel, or as it streams from the
    database); together the spans check the whole chain. The loop body is one SHA-256
    and two comparisons: this is the hot path of ``custodes audit verify``.
    """
    sha = hashlib.sha256
    expected = start
    try:
        for position, body, stored in zip(positions, bodies, hashes, strict=True):
            if position != expected or sha(previous + expected.to_bytes(8, "big") + body).digest() != stored:
                return expected
            previous = stored
            expected += 1
    except TypeError:  # a value rewritten to another type (text for bytes): not an entry
        return expected
    return None
