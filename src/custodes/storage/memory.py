"""In-memory adapters of the core ports, for unit tests and dry runs."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

import polars as pl

from custodes.core.accounts import ApiTokenRecord, PasskeyCredential, SessionRecord, UserAccount
from custodes.core.entities import Department, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.events import SignInEvent, empty_access_events, empty_signin_events
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


class MemoryIdentityStore:
    """Accounts, passkeys, sessions and tokens in dicts, guarded by one lock."""

    def __init__(self) -> None:
        self.users: dict[str, UserAccount] = {}
        self.passkeys: dict[bytes, PasskeyCredential] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.tokens: dict[str, ApiTokenRecord] = {}
        self._lock = threading.Lock()

    def add_user(self, user: UserAccount) -> None:
        with self._lock:
            if user.name in self.users:
                raise ValueError(f"{user.name} exists")
            self.users[user.name] = user

    def get_user(self, name: str) -> UserAccount | None:
        return self.users.get(name)

    def list_users(self) -> list[UserAccount]:
        return list(self.users.values())

    def save_user(self, user: UserAccount) -> None:
        with self._lock:
            self.users[user.name] = user

    def record_failed_login(self, name: str, threshold: int, lock_until: datetime) -> bool:
        with self._lock:
            user = self.users.get(name)
            if user is None:
                return False
            failures = user.failed_logins + 1
            locks = failures >= threshold and (
                user.locked_until is None or user.locked_until < lock_until
            )
            self.users[name] = replace(
                user,
                failed_logins=failures,
                locked_until=lock_until if locks else user.locked_until,
            )
            return locks

    def reset_failed_logins(self, name: str) -> None:
        with self._lock:
            if name in self.users:
                self.users[name] = replace(self.users[name], failed_logins=0)

    def claim_totp_step(self, name: str, step: int) -> bool:
        with self._lock:
            user = self.users.get(name)
            if user is None or step <= user.totp_last_step:
                return False
            self.users[name] = replace(user, totp_last_step=step)
            return True

    def consume_recovery_code(self, name: str, digest: str) -> bool:
        with self._lock:
            user = self.users.get(name)
            if user is None or digest not in user.recovery_hashes:
                return False
            left = tuple(d for d in user.recovery_hashes if d != digest)
            self.users[name] = replace(user, recovery_hashes=left)
            return True

    def add_passkey(self, passkey: PasskeyCredential) -> None:
        self.passkeys[passkey.credential_id] = passkey

    def get_passkey(self, credential_id: bytes) -> PasskeyCredential | None:
        return self.passkeys.get(credential_id)

    def passkeys_of(self, name: str) -> list[PasskeyCredential]:
        return [p for p in self.passkeys.values() if p.user_name == name]

    def reset_second_factors(self, name: str) -> int:
        with self._lock:
            user = self.users[name]
            keys = [k for k, p in self.passkeys.items() if p.user_name == name]
            for key in keys:
                del self.passkeys[key]
            self.users[name] = replace(
                user,
                totp_sealed=None,
                totp_enabled=False,
                recovery_hashes=(),
                mfa_enrolment_required=True,
            )
            return len(keys) + int(user.totp_enabled)

    def update_passkey_use(self, credential_id: bytes, sign_count: int, at: datetime) -> None:
        with self._lock:
            passkey = self.passkeys[credential_id]
            self.passkeys[credential_id] = replace(passkey, sign_count=sign_count, last_used_at=at)

    def put_session(self, session: SessionRecord) -> None:
        self.sessions[session.key] = session

    def get_session(self, key: str) -> SessionRecord | None:
        return self.sessions.get(key)

    def delete_session(self, key: str) -> None:
        self.sessions.pop(key, None)

    def delete_sessions_of(self, name: str) -> int:
        with self._lock:
            keys = [k for k, s in self.sessions.items() if s.user_name == name]
            for key in keys:
                del self.sessions[key]
            return len(keys)

    def sessions_of(self, name: str) -> list[SessionRecord]:
        return [s for s in list(self.sessions.values()) if s.user_name == name]

    def put_token(self, token: ApiTokenRecord) -> None:
        self.tokens[token.token_id] = token

    def get_token(self, token_id: str) -> ApiTokenRecord | None:
        return self.tokens.get(token_id)

    def revoke_tokens_of(self, name: str) -> int:
        with self._lock:
            mine = [t for t in self.tokens.values() if t.user_name == name and not t.revoked]
            for token in mine:
                self.tokens[token.token_id] = replace(token, revoked=True)
            return len(mine)


class MemorySignInRecorder:
    """Keeps every sign-in event in a list."""

    def __init__(self) -> None:
        self.events: list[SignInEvent] = []
        self._lock = threading.Lock()

    def record(self, event: SignInEvent) -> None:
        with self._lock:
            self.events.append(event)
