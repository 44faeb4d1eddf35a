"""Ports: the narrow interfaces through which the domain reaches storage and buses.

Each has an in-memory adapter for unit tests (``custodes.storage.memory``) and real
adapters tested against real servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import polars as pl

from custodes.core.accounts import ApiTokenRecord, PasskeyCredential, SessionRecord, UserAccount
from custodes.core.cases import Alert, Case, CaseStatus, Suppression, Verdict
from custodes.core.entities import Department, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.events import SignInEvent
from custodes.core.quarantine import QuarantinedRecord
from custodes.core.responses import ResponseRun


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


class IdentityStore(Protocol):
    """Accounts, passkeys, sessions and API tokens.

    The methods that guard against races (``record_failed_login``, ``claim_totp_step``,
    ``consume_recovery_code``) are atomic: many concurrent sign-in attempts count every
    failure and accept a TOTP code once.
    """

    def add_user(self, user: UserAccount) -> None:
        """Store a new account; raise ``ValueError`` when the name is taken."""
        ...

    def get_user(self, name: str) -> UserAccount | None: ...

    def list_users(self) -> list[UserAccount]: ...

    def save_user(self, user: UserAccount) -> None:
        """Replace the stored account of the same name."""
        ...

    def record_failed_login(self, name: str, threshold: int, lock_until: datetime) -> bool:
        """Add one failure; lock until ``lock_until`` when failures reach ``threshold``.

        True when this very failure set the lock (once, however many race), so the
        lockout is reported once.
        """
        ...

    def reset_failed_logins(self, name: str) -> None: ...

    def claim_totp_step(self, name: str, step: int) -> bool:
        """Record ``step`` as used if it is later than the last one; False otherwise."""
        ...

    def consume_recovery_code(self, name: str, digest: str) -> bool:
        """Remove ``digest`` from the unused recovery codes; False when it is not there."""
        ...

    def add_passkey(self, passkey: PasskeyCredential) -> None: ...

    def get_passkey(self, credential_id: bytes) -> PasskeyCredential | None: ...

    def passkeys_of(self, name: str) -> list[PasskeyCredential]: ...

    def reset_second_factors(self, name: str) -> int:
        """In one step: forget the TOTP secret, recovery codes and passkeys of ``name``
        and mark it to enrol again. Returns how many factors there were."""
        ...

    def update_passkey_use(self, credential_id: bytes, sign_count: int, at: datetime) -> None: ...

    def put_session(self, session: SessionRecord) -> None: ...

    def get_session(self, key: str) -> SessionRecord | None: ...

    def delete_session(self, key: str) -> None: ...

    def delete_sessions_of(self, name: str) -> int: ...

    def sessions_of(self, name: str) -> list[SessionRecord]: ...

    def put_token(self, token: ApiTokenRecord) -> None: ...

    def get_token(self, token_id: str) -> ApiTokenRecord | None: ...

    def revoke_tokens_of(self, name: str) -> int: ...


class SignInRecorder(Protocol):
    """Where the front door's events go: the event stores and the bus, for the detectors."""

    def record(self, event: SignInEvent) -> None: ...


class CaseStore(Protocol):
    """Alerts, cases and suppressions: the privacy officer's queue."""

    def known_alert_ids(self, alert_ids: Sequence[str]) -> set[str]: ...

    def add_alerts(self, alerts: Sequence[Alert]) -> int:
        """Store the alerts not yet stored; return how many were new."""
        ...

    def alerts_of_cases(self, case_ids: Sequence[str]) -> list[Alert]:
        """The alerts of these cases, user cases and patient cases alike, by time."""
        ...

    def alerts_near(
        self,
        since: datetime,
        *,
        user_ids: Sequence[str] = (),
        patient_ids: Sequence[str] = (),
    ) -> list[Alert]:
        """Unsuppressed alerts at or after ``since`` by these users or on these patients."""
        ...

    def save_cases(
        self,
        cases: Sequence[Case],
        assignment: Mapping[str, str],
        at: datetime,
        patient_assignment: Mapping[str, str] | None = None,
    ) -> None:
        """Insert or update cases (keeping their status and verdict) and link alerts:
        ``assignment`` to their user case, ``patient_assignment`` to their patient case."""
        ...

    def drop_cases(self, case_ids: Sequence[str]) -> None:
        """Remove open cases whose alerts joined an older case (merged into it)."""
        ...

    def case(self, case_id: str) -> Case | None: ...

    def cases(self, statuses: Sequence[CaseStatus], limit: int) -> list[Case]: ...

    def case_statuses(self, case_ids: Sequence[str]) -> dict[str, CaseStatus]: ...

    def set_case_status(
        self,
        case_id: str,
        status: CaseStatus,
        at: datetime,
        *,
        verdict: Verdict | None = None,
        note: str | None = None,
        by: str | None = None,
    ) -> Case | None: ...

    def prior_offences(self, user_ids: Sequence[str]) -> dict[str, int]:
        """Per user, how many cases were closed as confirmed misuse."""
        ...

    def add_suppression(self, suppression: Suppression) -> None: ...

    def suppressions(self) -> list[Suppression]: ...

    def revoke_suppression(self, suppression_id: str, at: datetime) -> bool: ...


class AccountControl(Protocol):
    """What a response may do to an account (narrow, so respond/ needs no identity/).

    Each method raises ``LookupError`` for an unknown account.
    """

    def lock(self, name: str) -> None: ...

    def unlock(self, name: str) -> None: ...

    def revoke_sessions(self, name: str) -> int: ...

    def revoke_tokens(self, name: str) -> int: ...

    def require_step_up(self, name: str) -> None:
        """The account's next sensitive operation needs a new second factor."""
        ...

    def withdraw_step_up(self, name: str) -> None: ...

    def require_mfa_reenrolment(self, name: str) -> int:
        """Reset the account's TOTP and passkeys; it enrols again at its next sign-in.
        Returns how many factors were removed."""
        ...


class ResponseRunStore(Protocol):
    """Every run of a response action, success or failure, appended and kept."""

    def append(self, run: ResponseRun) -> None: ...

    def latest(self, step_id: str) -> ResponseRun | None:
        """The most recent run of a step."""
        ...

    def runs(self, case_id: str | None = None) -> list[ResponseRun]: ...

    def latest_of_all(self) -> list[ResponseRun]:
        """The most recent run of every step."""
        ...


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A key sealed by a key-encryption key: which version sealed it, and the blob."""

    version: int
    blob: bytes


class KeyService(Protocol):
    """A key-encryption service: the local keyring, or an external KMS (Vault transit).

    Raw key-encryption keys never leave it; callers hand it keys to wrap and unwrap.
    ``context`` is bound to the wrapped key (associated data): a wrapped key presented
    with another context does not unwrap.
    """

    def current_version(self) -> int: ...

    def versions(self) -> list[int]:
        """Every version that can still unwrap, oldest first."""
        ...

    def wrap(self, key: bytes, context: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """The key; raise ``ValueError`` (never a hint why) when it does not unwrap."""
        ...

    def add_version(self) -> int:
        """Make a new current version; older ones still unwrap until retired."""
        ...

    def retire(self, version: int) -> None:
        """Destroy a version that is not current; what it wrapped no longer unwraps."""
        ...

    def index_secret(self) -> bytes:
        """The secret blind indexes are keyed from (stable across rotations)."""
        ...


@dataclass(frozen=True, slots=True)
class ScopeKeyRecord:
    """A scope key (tenant, patient or record), wrapped by the key service.

    ``patient_id`` names the patient whose erasure destroys it (None for tenant keys).
    """

    scope_id: str
    scope: str
    patient_id: str | None
    wrapped: WrappedKey


class ScopeKeyStore(Protocol):
    """Where wrapped scope keys are kept. ``delete_patient`` removes every copy."""

    def get(self, scope_id: str) -> ScopeKeyRecord | None: ...

    def put(self, record: ScopeKeyRecord) -> None:
        """Replace the record of the same ``scope_id`` (rewrapping), or insert it."""
        ...

    def add_new(self, record: ScopeKeyRecord) -> ScopeKeyRecord:
        """Insert ``record`` unless its scope already has one; return the stored one.

        Two writers creating the same scope key at once must agree on one key: the
        loser gets the winner's, never overwrites it (that would orphan what the winner
        already sealed).
        """
        ...

    def get_many(self, scope_ids: Iterable[str]) -> dict[str, ScopeKeyRecord]:
        """The stored records of those scopes that have one."""
        ...

    def add_new_many(self, records: Sequence[ScopeKeyRecord]) -> dict[str, ScopeKeyRecord]:
        """``add_new`` for many, in one transaction; the stored record of each scope."""
        ...

    def all(self) -> list[ScopeKeyRecord]: ...

    def count_by_version(self) -> dict[int, int]: ...

    def delete_patient(self, patient_id: str) -> int: ...


@dataclass(frozen=True, slots=True)
class StoredAuditEntry:
    """One link of the audit chain as stored: its position, canonical body and hash."""

    position: int
    body: bytes
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed statement of the log's size, Merkle root and last hash."""

    size: int
    root: bytes
    last_hash: bytes
    time: datetime
    signature: bytes


class PositionTaken(Exception):
    """Another writer appended to the audit log at this position first."""


class AuditStore(Protocol):
    """An append-only audit log. Entries are never updated or deleted through it."""

    def append(self, entries: Sequence[StoredAuditEntry]) -> None:
        """Store entries that continue the log; ``PositionTaken`` if another writer got there first."""
        ...

    def last(self) -> StoredAuditEntry | None: ...

    def count(self) -> int: ...

    def read(self, start: int = 0, stop: int | None = None) -> list[StoredAuditEntry]:
        """Entries with ``start <= position < stop``, in position order."""
        ...

    def columns(
        self, start: int = 0, stop: int | None = None
    ) -> tuple[list[int], list[bytes], list[bytes]]:
        """Entries with ``start <= position < stop`` as three columns (positions, bodies,
        hashes), for bulk checks. Safe to call in a process forked from the one that
        made the store (each span of a parallel check reads its own)."""
        ...

    def position_bound(self) -> int:
        """One more than the largest position stored (0 when empty)."""
        ...

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    def checkpoints(self) -> list[StoredCheckpoint]: ...


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One version of a vault record as stored: sealed, with what it is bound to.

    Only the logical ids, the tier and the time are in the clear; the resource itself
    is ``ciphertext`` under a data key that ``wrapped_key`` holds, sealed by the scope
    key ``scope_id`` names. ``deleted`` marks a version that records a deletion.
    """

    resource_type: str
    record_id: str
    version: int
    patient_id: str | None
    tier: str
    scope_id: str
    wrapped_key: bytes
    ciphertext: bytes
    last_updated: datetime
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A blind index entry: a keyed digest of an identifier or a name, never the value."""

    purpose: str
    digest: str
    resource_type: str
    record_id: str
    patient_id: str | None


class VersionConflict(Exception):
    """Another writer stored the same version of a record first."""


class RecordStore(Protocol):
    """Where the vault keeps its sealed records and blind indexes.

    ``write`` is all or nothing: every version and index entry of the batch is stored,
    or none (a version that already exists raises ``VersionConflict``).
    """

    def latest(self, resource_type: str, record_id: str) -> StoredRecord | None:
        """The newest version (a deletion marker included), or None."""
        ...

    def version(self, resource_type: str, record_id: str, version: int) -> StoredRecord | None: ...

    def latest_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        """The newest version of each (type, id) that exists."""
        ...

    def write(self, records: Sequence[StoredRecord], index: Sequence[IndexEntry] = ()) -> None: ...

    def by_patient(self, patient_id: str, resource_types: Iterable[str] | None = None) -> list[StoredRecord]:
        """The current, undeleted versions of the patient's records, oldest first."""
        ...

    def of_type(self, resource_type: str, limit: int) -> list[StoredRecord]:
        """Current, undeleted versions of one type (ids in order), at most ``limit``."""
        ...

    def find(self, purpose: str, digest: str, resource_type: str) -> list[str]:
        """Record ids whose blind index entry matches."""
        ...

    def erase_patient(self, patient_id: str) -> int:
        """Delete every version and index entry of the patient's records; how many versions."""
        ...

    def count(self) -> dict[str, int]:
        """Current, undeleted records by type."""
        ...
