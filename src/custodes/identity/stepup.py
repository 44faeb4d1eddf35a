"""Step-up: some operations need a second factor verified within the last few minutes.

Break-the-glass, exports and key operations need a fresh second factor (TOTP or a
passkey); records of the most sensitive tier need a fresh passkey with user
verification (the fingerprint or face check on the person's own device).

>>> from datetime import UTC, datetime, timedelta
>>> from custodes.core.accounts import SessionRecord
>>> now = datetime(2026, 1, 1, 12, tzinfo=UTC)
>>> session = SessionRecord("k", "alice", now, now, mfa_at=now - timedelta(minutes=20))
>>> StepUpPolicy().missing(session, Operation.EXPORT, now)
'a second factor within the last 10 minutes'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from custodes.core.accounts import SessionRecord
from custodes.identity.errors import StepUpRequired


class Operation(StrEnum):
    BREAK_THE_GLASS = "break_the_glass"
    EXPORT = "export"
    KEY_OPERATION = "key_operation"
    SENSITIVE_TIER = "sensitive_tier"
    #: Replacing one's own second factor.
    CHANGE_AUTHENTICATOR = "change_authenticator"
    #: Ending one's own sessions on other devices.
    MANAGE_SESSIONS = "manage_sessions"


#: Operations that need a passkey with user verification, not just any second factor.
NEEDS_USER_VERIFICATION = frozenset({Operation.SENSITIVE_TIER})


@dataclass(frozen=True, slots=True)
class StepUpPolicy:
    fresh_for: timedelta = timedelta(minutes=10)

    def missing(self, session: SessionRecord, operation: Operation, now: datetime) -> str | None:
        """What the session lacks for ``operation``, or None when it may go ahead."""
        minutes = int(self.fresh_for.total_seconds() // 60)
        if operation in NEEDS_USER_VERIFICATION:
            if session.verified_at is None or now - session.verified_at > self.fresh_for:
                return f"a passkey with user verification within the last {minutes} minutes"
            return None
        if session.mfa_at is None or now - session.mfa_at > self.fresh_for:
            return f"a second factor within the last {minutes} minutes"
        return None

    def require(self, session: SessionRecord, operation: Operation, now: datetime) -> None:
        reason = self.missing(session, operation, now)
        if reason:
            raise StepUpRequired(f"{operation} needs {reason}")
