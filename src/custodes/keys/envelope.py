"""Envelope encryption of records: the recipe, so no caller touches a nonce or a key.

Three layers:

1. every record gets a fresh 256-bit **data key**; the record is sealed with it
   (AES-256-GCM, random 96-bit nonce);
2. the data key is wrapped by a **scope key** chosen by the record's tier: the tenant's
   key, the patient's key, or a key of its own for the most sensitive records;
3. scope keys are wrapped by the **key-encryption key** of the ``KeyService`` (the
   local keyring, or an external KMS).

The associated data of both the record and its wrapped data key is the record's
binding (id, type, version, tier): a ciphertext moved to another row does not open.
Rotating the KEK rewraps the scope keys only; data and data keys are not touched.
Erasing a patient deletes the patient's scope keys: every record of theirs becomes
unreadable, by anyone, for good (crypto-shredding).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custodes.core.ports import KeyService, ScopeKeyRecord, ScopeKeyStore
from custodes.keys.errors import Undecryptable

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = b"\x01"


class Tier(StrEnum):
    """How sensitive a record is; the tier chooses the key scope (docs/vault.md)."""

    ORGANISATIONAL = "organisational"  # no PHI: Organization, Practitioner, Location
    STANDARD = "standard"  # ordinary PHI
    SENSITIVE = "sensitive"  # HIV, 42 CFR Part 2, mental health, reproductive, genetics


class KeyScope(StrEnum):
    TENANT = "tenant"
    PATIENT = "patient"
    RECORD = "record"


SCOPE_OF_TIER = {
    Tier.ORGANISATIONAL: KeyScope.TENANT,
    Tier.STANDARD: KeyScope.PATIENT,
    Tier.SENSITIVE: KeyScope.RECORD,
}


@dataclass(frozen=True, slots=True)
class RecordRef:
    """What a sealed record is bound to. Change any field and it no longer opens."""

    record_id: str
    resource_type: str
    version: int
    tier: Tier
    patient_id: str | None = None
    tenant: str = "default"

    def __post_init__(self) -> None:
        if self.tier is not Tier.ORGANISATIONAL and not self.patient_id:
            raise ValueError("a record holding PHI needs its patient_id")
        for part in (self.record_id, self.resource_type, self.tenant, self.patient_id or ""):
            if "\x1f" in part:
                raise ValueError("identifiers may not contain the unit separator")

    def associated_data(self) -> bytes:
        return "\x1f".join(
            ("custodes-record-v1", self.tenant, self.resource_type, self.record_id,
             str(self.version), str(self.tier), self.patient_id or "")
        ).encode()  # fmt: skip

    def scope_id(self) -> str:
        scope = SCOPE_OF_TIER[self.tier]
        if scope is KeyScope.TENANT:
            return f"tenant:{self.tenant}"
        if scope is KeyScope.PATIENT:
            return f"patient:{self.tenant}:{self.patient_id}"
        return f"record:{self.tenant}:{self.resource_type}/{self.record_id}"


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """What the store keeps for a record: the sealed data, its wrapped data key, the scope."""

    scope_id: str
    wrapped_data_key: bytes
    ciphertext: bytes


class KeyConflict(Exception):
    """Another writer stored a scope key this batch was about to create: seal again."""


@dataclass(slots=True)
class SealBatch:
    """The scope keys of one write: looked up together before sealing, the new ones
    stored together after (``EnvelopeCipher.store_new_keys``), before any record that
    uses them."""

    keys: dict[str, bytes]
    new: dict[str, ScopeKeyRecord]


@dataclass(frozen=True, slots=True)
class RotationProgress:
    done: int
    total: int


class MemoryScopeKeyStore:
    """The in-memory ``ScopeKeyStore``, for tests and dry runs."""

    def __init__(self) -> None:
        self._records: dict[str, ScopeKeyRecord] = {}
        self._lock = threading.Lock()

    def get(self, scope_id: str) -> ScopeKeyRecord | None:
        return self._records.get(scope_id)

    def put(self, record: ScopeKeyRecord) -> None:
        with self._lock:
            self._records[record.scope_id] = record

    def add_new(self, record: ScopeKeyRecord) -> ScopeKeyRecord:
        with self._lock:
            return self._records.setdefault(record.scope_id, record)

    def get_many(self, scope_ids: Iterable[str]) -> dict[str, ScopeKeyRecord]:
        return {i: self._records[i] for i in scope_ids if i in self._records}

    def add_new_many(self, records: Sequence[ScopeKeyRecord]) -> dict[str, ScopeKeyRecord]:
        with self._lock:
            return {r.scope_id: self._records.setdefault(r.scope_id, r) for r in records}

    def all(self) -> list[ScopeKeyRecord]:
        return sorted(self._records.values(), key=lambda r: r.scope_id)

    def count_by_version(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for record in self._records.values():
            counts[record.wrapped.version] = counts.get(record.wrapped.version, 0) + 1
        return counts

    def delete_patient(self, patient_id: str) -> int:
        with self._lock:
            doomed = [k for k, r in self._records.items() if r.patient_id == patient_id]
            for key in doomed:
                del self._records[key]
        return len(doomed)


def _seal(key: bytes, plaintext: bytes, aad: bytes, random: Callable[[int], bytes]) -> bytes:
    nonce = random(NONCE_BYTES)
    return _FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != _FORMAT:
        raise Undecryptable()
    try:
        return AESGCM(key).decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise Undecryptable() from None


class EnvelopeCipher:
    """Seal and open records; rotate the KEK; shred a patient.

    >>> from custodes.keys.keyring import LocalKeyring
    >>> cipher = EnvelopeCipher(LocalKeyring.generate(), MemoryScopeKeyStore())
    >>> ref = RecordRef("obs-1", "Observation", 1, Tier.STANDARD, patient_id="p1")
    >>> cipher.open(ref, cipher.seal(ref, b'{"status":"final"}'))
    b'{"status":"final"}'
    """

    def __init__(
        self,
        keys: KeyService,
        scope_keys: ScopeKeyStore,
        random: Callable[[int], bytes] = os.urandom,
        *,
        open_cache_seconds: float = 30.0,
        open_cache_size: int = 20_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._scope_keys = scope_keys
        self._random = random
        # Scope keys unwrapped for reading, kept briefly so a chart's records do not each
        # cost a key lookup and an unwrap. Only opening uses it: sealing always reads the
        # store, so a patient erased by another process never gets a record under a
        # destroyed key. An erasure here drops the patient's entries at once; elsewhere,
        # the erased records are gone from the store, so a cached key opens nothing.
        self._open_ttl = open_cache_seconds
        self._open_size = open_cache_size
        self._monotonic = monotonic
        self._opened: OrderedDict[str, tuple[float, str | None, bytes]] = OrderedDict()
        self._opened_lock = threading.Lock()

    @staticmethod
    def _scope_context(record: ScopeKeyRecord | str) -> bytes:
        scope_id = record if isinstance(record, str) else record.scope_id
        return b"custodes-scope-key-v1\x1f" + scope_id.encode()

    def _scope_key(self, ref: RecordRef, create: bool) -> bytes:
        scope_id = ref.scope_id()
        stored = self._scope_keys.get(scope_id)
        if stored is None:
            if not create:
                raise Undecryptable()
            key = self._random(KEY_BYTES)
            scope = SCOPE_OF_TIER[ref.tier]
            patient = None if scope is KeyScope.TENANT else ref.patient_id
            wrapped = self._keys.wrap(key, self._scope_context(scope_id))
            stored = self._scope_keys.add_new(ScopeKeyRecord(scope_id, str(scope), patient, wrapped))
            if stored.wrapped == wrapped:
                return key
        try:
            return self._keys.unwrap(stored.wrapped, self._scope_context(stored))
        except ValueError:
            raise Undecryptable() from None

    def batch(self, refs: Iterable[RecordRef]) -> SealBatch:
        """Look up the scope keys of the records about to be sealed, in one query.

        A batch lives for one write only: kept longer, a patient erased meanwhile by
        another process would get records sealed under a key that no longer exists.
        """
        stored = self._scope_keys.get_many({ref.scope_id() for ref in refs})
        try:
            keys = {i: self._keys.unwrap(r.wrapped, self._scope_context(r)) for i, r in stored.items()}
        except ValueError:
            raise Undecryptable() from None
        return SealBatch(keys, {})

    def store_new_keys(self, batch: SealBatch) -> None:
        """Store the scope keys the batch created; ``KeyConflict`` if another writer
        created one of them first (nothing sealed in this batch may then be stored)."""
        if not batch.new:
            return
        stored = self._scope_keys.add_new_many(list(batch.new.values()))
        lost = [i for i, mine in batch.new.items() if stored[i].wrapped != mine.wrapped]
        batch.new.clear()
        if lost:
            raise KeyConflict("another writer created the same scope key first")

    def _batch_key(self, ref: RecordRef, batch: SealBatch) -> bytes:
        scope_id = ref.scope_id()
        key = batch.keys.get(scope_id)
        if key is None:
            key = self._random(KEY_BYTES)
            scope = SCOPE_OF_TIER[ref.tier]
            patient = None if scope is KeyScope.TENANT else ref.patient_id
            wrapped = self._keys.wrap(key, self._scope_context(scope_id))
            batch.new[scope_id] = ScopeKeyRecord(scope_id, str(scope), patient, wrapped)
            batch.keys[scope_id] = key
        return key

    def seal(self, ref: RecordRef, plaintext: bytes, batch: SealBatch | None = None) -> SealedRecord:
        """Seal ``plaintext`` under a fresh data key bound to ``ref``.

        With a ``batch``, the scope key comes from it (made there if new; the caller
        stores the batch's new keys before the records); without, from the store.
        """
        aad = ref.associated_data()
        data_key = self._random(KEY_BYTES)
        ciphertext = _seal(data_key, plaintext, aad, self._random)
        scope_key = self._batch_key(ref, batch) if batch is not None else self._scope_key(ref, create=True)
        wrapped = _seal(scope_key, data_key, aad, self._random)
        return SealedRecord(ref.scope_id(), wrapped, ciphertext)

    def open(self, ref: RecordRef, sealed: SealedRecord) -> bytes:
        """The plaintext, or ``Undecryptable`` (always the same error, whatever went wrong)."""
        if sealed.scope_id != ref.scope_id():
            raise Undecryptable()
        aad = ref.associated_data()
        data_key = _open(self._scope_key_to_open(ref), sealed.wrapped_data_key, aad)
        return _open(data_key, sealed.ciphertext, aad)

    def _scope_key_to_open(self, ref: RecordRef) -> bytes:
        if self._open_ttl <= 0:
            return self._scope_key(ref, create=False)
        scope_id, now = ref.scope_id(), self._monotonic()
        with self._opened_lock:
            hit = self._opened.get(scope_id)
            if hit is not None and hit[0] > now:
                self._opened.move_to_end(scope_id)
                return hit[2]
        key = self._scope_key(ref, create=False)
        with self._opened_lock:
            self._opened[scope_id] = (now + self._open_ttl, ref.patient_id, key)
            self._opened.move_to_end(scope_id)
            while len(self._opened) > self._open_size:
                self._opened.popitem(last=False)
        return key

    def forget_opened(self, patient_id: str | None = None) -> None:
        """Drop cached scope keys (of one patient, or all)."""
        with self._opened_lock:
            if patient_id is None:
                self._opened.clear()
                return
            for scope_id in [k for k, (_t, p, _key) in self._opened.items() if p == patient_id]:
                del self._opened[scope_id]

    # --- rotation --------------------------------------------------------------------------

    def rotate(self) -> Iterator[RotationProgress]:
        """Add a KEK version, rewrap every scope key under it, retire unused versions.

        A generator: it yields progress after each key, so the CLI can show a bar. The
        data and the wrapped data keys are not touched. A rotation interrupted half-way
        leaves everything readable (old versions retire only once nothing uses them).
        """
        self._keys.add_version()
        yield from self.rewrap()

    def rewrap(self) -> Iterator[RotationProgress]:
        """Rewrap the scope keys not yet under the current version; then retire the rest."""
        current = self._keys.current_version()
        stale = [r for r in self._scope_keys.all() if r.wrapped.version != current]
        yield RotationProgress(0, len(stale))
        for done, record in enumerate(stale, start=1):
            try:
                key = self._keys.unwrap(record.wrapped, self._scope_context(record))
            except ValueError:
                raise Undecryptable() from None
            self._scope_keys.put(replace(record, wrapped=self._keys.wrap(key, self._scope_context(record))))
            yield RotationProgress(done, len(stale))
        self.retire_unused()

    def retire_unused(self) -> list[int]:
        """Retire every KEK version that no scope key uses any more (never the current)."""
        used = self._scope_keys.count_by_version()
        current = self._keys.current_version()
        retired = [v for v in self._keys.versions() if v != current and not used.get(v)]
        for version in retired:
            self._keys.retire(version)
        return retired

    def status(self) -> dict[str, object]:
        return {
            "current_version": self._keys.current_version(),
            "versions": self._keys.versions(),
            "scope_keys_by_version": {str(k): v for k, v in sorted(self._scope_keys.count_by_version().items())},
        }

    # --- erasure ---------------------------------------------------------------------------

    def shred_patient(self, patient_id: str) -> int:
        """Destroy every key of this patient's records; return how many were destroyed."""
        self.forget_opened(patient_id)
        return self._scope_keys.delete_patient(patient_id)
