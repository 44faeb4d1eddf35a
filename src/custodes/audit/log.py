"""The audit log service: append entries, sign checkpoints, verify the whole log.

Checkpoints are Ed25519 signatures over a canonical statement of the log's size, its
RFC 6962 Merkle root (leaves: the entry hashes) and its last hash. The chain makes
each entry depend on all before it; a signed checkpoint pins the chain, so a log
rewritten from some point on (every later hash recomputed) or cut short is caught too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodes.audit.chain import GENESIS, AuditEntry, chain, first_broken_link
from custodes.audit.merkle import MerkleFrontier, merkle_root
from custodes.audit.parallel import PARALLEL_FROM, can_fork, check_store_in_spans
from custodes.core.clock import Clock
from custodes.core.ports import AuditStore, PositionTaken, StoredCheckpoint

LOG_NAME = "custodes-audit-v1"


def checkpoint_statement(size: int, root: bytes, last_hash: bytes, time: str) -> bytes:
    """The bytes a checkpoint signs."""
    return orjson.dumps(
        {"log": LOG_NAME, "size": size, "root": root.hex(), "last_hash": last_hash.hex(), "time": time},
        option=orjson.OPT_SORT_KEYS,
    )


def _statement_of(cp: StoredCheckpoint) -> bytes:
    time = cp.time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return checkpoint_statement(cp.size, cp.root, cp.last_hash, time)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict. ``first_bad`` is the first position that does not verify (None: all do)."""

    entries: int
    checkpoints: int
    first_bad: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "first_bad_position": self.first_bad,
            "problem": self.problem,
        }


SpanChecker = Callable[[list[int], list[bytes], list[bytes]], int | None]


def verify_columns(
    positions: list[int],
    bodies: list[bytes],
    hashes: list[bytes],
    checkpoints: list[StoredCheckpoint],
    public_key: Ed25519PublicKey,
    *,
    check_root: bool = True,
    check_chain: SpanChecker | None = None,
) -> VerifyReport:
    """Verify a log given as columns (what ``AuditStore.columns`` returns).

    1. every hash follows from the row before it (first break named);
    2. every checkpoint's signature holds, its size is within the log and its last
       hash is the stored hash at that size (with 1, that pins every entry before);
    3. the newest checkpoint's Merkle root is recomputed (``check_root``).
    """
    n = len(hashes)
    broken = (check_chain or first_broken_link)(positions, bodies, hashes)
    missing = broken is not None and broken < n and positions[broken] > broken
    return judge(broken, missing, hashes, checkpoints, public_key, check_root=check_root)


def judge(
    broken: int | None,
    missing: bool,
    hashes: list[bytes],
    checkpoints: list[StoredCheckpoint],
    public_key: Ed25519PublicKey,
    *,
    check_root: bool = True,
) -> VerifyReport:
    """The verdict, given the chain check's answer and the stored hashes (steps 2 and 3)."""
    n = len(hashes)
    if broken is not None:
        what = "missing" if missing else "does not match the chain"
        return VerifyReport(n, len(checkpoints), broken, f"entry {broken} {what}")
    ordered = sorted(checkpoints, key=lambda cp: cp.size)
    signed_before = 0
    for cp in ordered:
        try:
            public_key.verify(cp.signature, _statement_of(cp))
        except InvalidSignature:
            return VerifyReport(n, len(checkpoints), signed_before,
                                f"the checkpoint at size {cp.size} has a bad signature")  # fmt: skip
        if cp.size > n:
            return VerifyReport(n, len(checkpoints), n,
                                f"entries {n} to {cp.size - 1} are missing (a checkpoint signed {cp.size})")  # fmt: skip
        last = hashes[cp.size - 1] if cp.size else GENESIS
        if last != cp.last_hash:
            return VerifyReport(n, len(checkpoints), signed_before,
                                f"entries between {signed_before} and {cp.size - 1} were rewritten "
                                f"(the checkpoint at size {cp.size} does not match)")  # fmt: skip
        signed_before = cp.size
    if check_root and ordered:
        newest = ordered[-1]
        if merkle_root(hashes[: newest.size]) != newest.root:
            return VerifyReport(n, len(checkpoints), 0,
                                f"the Merkle root of the checkpoint at size {newest.size} does not match")  # fmt: skip
    return VerifyReport(n, len(checkpoints))


@dataclass(slots=True)
class _Pending:
    """Entries waiting for the next group commit, and what became of them."""

    entries: list[AuditEntry]
    positions: list[int] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


class AuditLog:
    """Append audited acts and sign checkpoints every ``checkpoint_every`` entries.

    >>> from datetime import datetime, UTC
    >>> from custodes.audit.memory import MemoryAuditStore
    >>> from custodes.core.events import Action
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> key = Ed25519PrivateKey.generate()
    >>> class Fixed:
    ...     def now(self): return datetime(2026, 3, 1, tzinfo=UTC)
    >>> log = AuditLog(MemoryAuditStore(), Fixed(), key, checkpoint_every=2)
    >>> [log.record(AuditEntry(Fixed().now(), "u1", Action.READ, patient_id="p1")) for _ in range(3)]
    [0, 1, 2]
    >>> log.verify(key.public_key()).ok
    True
    """

    def __init__(
        self,
        store: AuditStore,
        clock: Clock,
        signing_key: Ed25519PrivateKey,
        *,
        checkpoint_every: int = 10_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._key = signing_key
        self._every = checkpoint_every
        self._lock = threading.Lock()
        self._frontier = MerkleFrontier()
        self._last_hash = GENESIS
        self._head: tuple[int, bytes] | None = None
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()

    def record(self, entry: AuditEntry) -> int:
        """Append one entry; return its position."""
        return self.record_many([entry])[0]

    def _read_head(self) -> tuple[int, bytes]:
        last = self._store.last()
        return (0, GENESIS) if last is None else (last.position + 1, last.entry_hash)

    def record_many(self, entries: list[AuditEntry]) -> list[int]:
        """Append entries; return their positions once they are stored.

        Group commit: callers on other threads that arrive while an append is under way
        queue their entries, and the next thread to get the writer's lock stores every
        queued entry in one transaction. Each caller still returns only after its own
        entries are stored (or raises what stopped them).
        """
        mine = _Pending(list(entries))
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    positions = self._append_locked([e for p in batch for e in p.entries])
                except BaseException as error:
                    for pending in batch:
                        pending.error, pending.done = error, True
                    raise
                at = 0
                for pending in batch:
                    pending.positions, pending.done = positions[at : at + len(pending.entries)], True
                    at += len(pending.entries)
        if mine.error is not None:
            raise mine.error
        return mine.positions

    def _append_locked(self, entries: list[AuditEntry]) -> list[int]:
        # The head (next position, last hash) is kept between appends; when another
        # process appended meanwhile, the store refuses the taken position, and the head
        # is read again. Positions are the key, so no entry is ever lost.
        if not entries:
            return []
        if self._head is None:
            self._head = self._read_head()
        for attempt in range(100):
            start, previous = self._head
            linked = chain(entries, start, previous)
            try:
                self._store.append(linked)
                break
            except PositionTaken:
                if attempt == 99:
                    raise
                self._head = self._read_head()
        self._head = (start + len(linked), linked[-1].entry_hash)
        if self._every and (start // self._every) != ((start + len(entries)) // self._every):
            self._checkpoint_locked()
        return [row.position for row in linked]

    def checkpoint(self) -> StoredCheckpoint:
        """Sign the log as it stands now."""
        with self._lock:
            return self._checkpoint_locked()

    def _checkpoint_locked(self) -> StoredCheckpoint:
        # Only the entries appended since the last checkpoint are read and hashed in (by
        # this process or any other writing to the same store).
        _positions, _bodies, fresh = self._store.columns(self._frontier.size, None)
        for entry_hash in fresh:
            self._frontier.add(entry_hash)
        if fresh:
            self._last_hash = fresh[-1]
        now = self._clock.now().astimezone(UTC)
        time = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
        size, root, last = self._frontier.size, self._frontier.root(), self._last_hash
        signature = self._key.sign(checkpoint_statement(size, root, last, time))
        cp = StoredCheckpoint(size, root, last, now, signature)
        self._store.add_checkpoint(cp)
        return cp

    def verify(
        self, public_key: Ed25519PublicKey, *, check_root: bool = True, workers: int = 1
    ) -> VerifyReport:
        """Verify the stored log; ``workers`` > 1 reads and checks large logs in spans
        across forked processes."""
        checkpoints = self._store.checkpoints()
        bound = self._store.position_bound()
        if workers > 1 and bound >= PARALLEL_FROM and can_fork():
            broken, missing, hashes = check_store_in_spans(self._store, bound, workers)
            return judge(broken, missing, hashes, checkpoints, public_key, check_root=check_root)
        positions, bodies, hashes = self._store.columns()
        return verify_columns(positions, bodies, hashes, checkpoints, public_key, check_root=check_root)
