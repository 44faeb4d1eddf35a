"""Server-side sessions: random ids, idle and absolute timeouts, rotation, revocation.

The id handed to the browser (cookie) or API client (bearer token) is 32 random bytes;
the store keeps only its keyed digest, so a copy of the sessions table opens nothing.
A session ends when it has been idle longer than ``idle_timeout`` (HIPAA automatic
logoff), when it is older than ``absolute_timeout``, at logout, or when every session
of the user is revoked. ``rotate`` gives a session a new id and forgets the old one;
the service calls it at login and whenever the session gains privilege (step-up).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from custodes.core.accounts import SessionRecord
from custodes.core.clock import Clock
from custodes.core.ports import IdentityStore
from custodes.identity.errors import NotAuthenticated
from custodes.identity.sealing import SecretSealer

#: How often a session's last-seen time is written back: finer than the idle timeout
#: needs, coarse enough that a busy session is not a write per request.
TOUCH_EVERY = timedelta(seconds=30)
HANDLE_CHARS = 16


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    idle: timedelta = timedelta(minutes=15)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A session and the one copy of its id (shown to the client, never stored)."""

    session_id: str
    record: SessionRecord


class SessionManager:
    def __init__(
        self,
        store: IdentityStore,
        sealer: SecretSealer,
        clock: Clock,
        timeouts: SessionTimeouts | None = None,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.timeouts = timeouts or SessionTimeouts()

    def key_of(self, session_id: str) -> str:
        return self.sealer.digest("session:" + session_id)

    def start(
        self,
        user_name: str,
        *,
        mfa_method: str | None = None,
        verified: bool = False,
        source_ip: str | None = None,
    ) -> IssuedSession:
        now = self.clock.now()
        session_id = secrets.token_urlsafe(32)
        record = SessionRecord(
            key=self.key_of(session_id),
            user_name=user_name,
            created_at=now,
            last_seen=now,
            mfa_at=now if mfa_method else None,
            mfa_method=mfa_method,
            verified_at=now if verified else None,
            source_ip=source_ip,
        )
        self.store.put_session(record)
        return IssuedSession(session_id, record)

    def check(self, session_id: str) -> SessionRecord:
        """The live session for ``session_id``; ``NotAuthenticated`` when there is none."""
        if not session_id:
            raise NotAuthenticated()
        record = self.store.get_session(self.key_of(session_id))
        if record is None:
            raise NotAuthenticated()
        now = self.clock.now()
        if (
            now - record.last_seen > self.timeouts.idle
            or now - record.created_at > self.timeouts.absolute
        ):
            self.store.delete_session(record.key)
            raise NotAuthenticated("the session has expired; sign in again")
        if now - record.last_seen >= TOUCH_EVERY:
            record = replace(record, last_seen=now)
            self.store.put_session(record)
        return record

    def rotate(self, record: SessionRecord, **changes) -> IssuedSession:
        """A new id for the same session (with ``changes``); the old id stops working."""
        session_id = secrets.token_urlsafe(32)
        fresh = replace(record, key=self.key_of(session_id), last_seen=self.clock.now(), **changes)
        self.store.put_session(fresh)
        self.store.delete_session(record.key)
        return IssuedSession(session_id, fresh)

    def end(self, session_id: str) -> None:
        self.store.delete_session(self.key_of(session_id))

    def handle(self, record: SessionRecord) -> str:
        """A public name for a session, to list and end it by (a prefix of its digest)."""
        return record.key[:HANDLE_CHARS]

    def live_sessions_of(self, user_name: str) -> list[SessionRecord]:
        now = self.clock.now()
        return [
            s
            for s in self.store.sessions_of(user_name)
            if now - s.last_seen <= self.timeouts.idle
            and now - s.created_at <= self.timeouts.absolute
        ]

    def revoke_all(self, user_name: str) -> int:
        return self.store.delete_sessions_of(user_name)

    def seconds_left(self, record: SessionRecord) -> int:
        end = record.created_at + self.timeouts.absolute
        return max(0, int((end - self.clock.now()).total_seconds()))
