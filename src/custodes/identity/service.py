"""The front door: accounts, sign-in, second factors, step-up, and their events.

Every sign-in answers in the same way and in about the same time whatever went wrong:
one Argon2id verification runs (against a dummy hash when no account has the name),
and every failure raises the same ``InvalidCredentials``. Only an attempt inside a
backoff wait is refused before hashing; the wait depends on the name and address
tried, not on whether an account exists. Failures back off
exponentially per account and per source address, and lock the account after
``lock_threshold`` in a row until ``lock_duration`` passes or an administrator unlocks
it; a locked account refuses even the right password and code.

Every success, failure, lockout, MFA challenge and step-up becomes a ``SignInEvent``
for the event stores and the bus, where the detectors read them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from custodes.core.accounts import AccountKind, Role, SessionRecord, UserAccount
from custodes.core.clock import Clock
from custodes.core.events import Outcome, SignInEvent, SignInKind
from custodes.core.ports import IdentityStore, SignInRecorder
from custodes.identity.errors import (
    AccountError,
    EnrolmentRequired,
    InvalidCredentials,
    NotAuthenticated,
    PasskeyError,
    StepUpRequired,
)
from custodes.identity.passkeys import PasskeyCeremonies, RelyingParty
from custodes.identity.passwords import Argon2Parameters, PasswordHasher, PasswordPolicy
from custodes.identity.sealing import SecretSealer
from custodes.identity.sessions import IssuedSession, SessionManager, SessionTimeouts
from custodes.identity.stepup import Operation, StepUpPolicy
from custodes.identity.throttle import Backoff
from custodes.identity.tokens import ApiTokens
from custodes.identity.totp import (
    RecoveryCodes,
    Totp,
    looks_like_recovery_code,
    new_recovery_codes,
    new_secret,
    recovery_digest,
    step_of,
)

APPLICATION = "custodes"
#: An administrator's lock lasts until an administrator lifts it.
LOCKED_BY_ADMINISTRATOR = datetime(9999, 1, 1, tzinfo=UTC)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Everything about the front door that an operator may tune."""

    argon2: Argon2Parameters = field(default_factory=Argon2Parameters)
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    timeouts: SessionTimeouts = field(default_factory=SessionTimeouts)
    lock_threshold: int = 10
    lock_duration: timedelta = timedelta(minutes=30)
    backoff_free_attempts: int = 3
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 900.0
    step_up_fresh_for: timedelta = timedelta(minutes=10)
    require_second_factor: bool = True
    relying_party: RelyingParty = field(default_factory=RelyingParty)


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """Shown once: the secret, its ``otpauth://`` URI (for the QR code), recovery codes."""

    secret: str
    uri: str
    recovery: RecoveryCodes


class NullRecorder:
    """Drops events; for tools that need no audit trail (and tests that check none)."""

    def record(self, event: SignInEvent) -> None:
        return None


class IdentityService:
    def __init__(
        self,
        store: IdentityStore,
        sealer: SecretSealer,
        clock: Clock,
        recorder: SignInRecorder | None = None,
        config: IdentityConfig | None = None,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.recorder = recorder or NullRecorder()
        self.config = config or IdentityConfig()
        self.hasher = PasswordHasher(self.config.argon2)
        self.sessions = SessionManager(store, sealer, clock, self.config.timeouts)
        self.tokens = ApiTokens(store, sealer, clock)
        self.passkeys = PasskeyCeremonies(store, clock, self.config.relying_party)
        self.step_up_policy = StepUpPolicy(self.config.step_up_fresh_for)
        self.backoff = Backoff(
            free_attempts=self.config.backoff_free_attempts,
            base_delay=self.config.backoff_base_seconds,
            max_delay=self.config.backoff_max_seconds,
        )

    # -- accounts ---------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: Role | str,
        password: str | None = None,
        kind: AccountKind = AccountKind.PERSON,
    ) -> UserAccount:
        if not NAME_PATTERN.match(name):
            raise AccountError(
                "an account name is 2-64 characters: lower-case letters, digits, '.', '_' or '-'"
            )
        try:
            role = Role(role)
        except ValueError as err:
            raise AccountError(f"unknown role {role!r}; roles: {', '.join(Role)}") from err
        if kind is AccountKind.PERSON:
            if password is None:
                raise AccountError("a person's account needs a password")
            self.config.password_policy.check(password, name)
        user = UserAccount(
            name=name,
            role=role,
            kind=kind,
            password_hash=self.hasher.hash(password) if password is not None else None,
            created_at=self.clock.now(),
        )
        try:
            self.store.add_user(user)
        except ValueError as err:
            raise AccountError(f"an account named {name} exists already") from err
        return user

    def user(self, name: str) -> UserAccount:
        user = self.store.get_user(name)
        if user is None:
            raise AccountError(f"no account is named {name}")
        return user

    def list_users(self) -> list[UserAccount]:
        return sorted(self.store.list_users(), key=lambda u: u.name)

    def set_password(self, name: str, password: str) -> None:
        """An administrator's reset: the new password, and every session of the user ends."""
        user = self.user(name)
        self.config.password_policy.check(password, name)
        self.store.save_user(replace(user, password_hash=self.hasher.hash(password)))
        self.sessions.revoke_all(name)

    def change_password(self, session_id: str, current: str, new: str) -> IssuedSession:
        """The user's own change: the current password first; then every other session
        ends and this one gets a new id."""
        record, user = self.authenticate(session_id)
        if not self.hasher.verify(user.password_hash, current):
            self._emit(SignInKind.MFA, Outcome.MINOR_FAILURE, user.name, mfa_method="password")
            raise InvalidCredentials()
        self.config.password_policy.check(new, user.name)
        self.store.save_user(replace(user, password_hash=self.hasher.hash(new)))
        self.sessions.revoke_all(user.name)
        issued = self.sessions.start(
            user.name, mfa_method=record.mfa_method, source_ip=record.source_ip
        )
        self._emit(
            SignInKind.LOGIN,
            Outcome.SUCCESS,
            user.name,
            mfa_method="password-change",
            session=issued.record,
        )
        return issued

    def set_role(self, name: str, role: Role | str) -> None:
        """Change the role; the user's sessions end, so the next sign-in carries the new one."""
        user = self.user(name)
        self.store.save_user(replace(user, role=Role(role)))
        self.sessions.revoke_all(name)

    def lock(self, name: str, *, by: str = "administrator") -> None:
        user = self.user(name)
        self.store.save_user(replace(user, locked_until=LOCKED_BY_ADMINISTRATOR))
        self.sessions.revoke_all(name)
        self.store.revoke_tokens_of(name)
        self._emit(SignInKind.LOCKOUT, Outcome.SUCCESS, name, device=by)

    def unlock(self, name: str) -> None:
        user = self.user(name)
        self.store.save_user(replace(user, locked_until=None, failed_logins=0))
        self.backoff.clear(_account_key(name))

    def demand_step_up(self, name: str) -> None:
        """The account's next sensitive operation needs a second factor given from now
        on, however fresh its sessions' last one (a response to a case)."""
        user = self.user(name)
        self.store.save_user(replace(user, step_up_demanded_at=self.clock.now()))

    def withdraw_step_up(self, name: str) -> None:
        user = self.user(name)
        self.store.save_user(replace(user, step_up_demanded_at=None))

    def reset_second_factors(self, name: str, *, by: str = "administrator") -> int:
        """Forget the account's TOTP secret, recovery codes and passkeys and end its
        sessions: at its next sign-in it must enrol a second factor before anything else.
        Returns how many factors were removed."""
        self.user(name)
        removed = self.store.reset_second_factors(name)
        self.sessions.revoke_all(name)
        self._emit(SignInKind.MFA, Outcome.SUCCESS, name, mfa_method="reset", device=by)
        return removed

    def enroll_totp(self, name: str) -> TotpEnrolment:
        """A new TOTP secret and recovery codes for ``name``, replacing any before."""
        user = self.user(name)
        secret = new_secret()
        recovery = new_recovery_codes()
        self.store.save_user(
            replace(
                user,
                totp_sealed=self.sealer.seal(secret.encode(), name),
                totp_enabled=True,
                totp_last_step=-1,
                recovery_hashes=recovery.digests,
                mfa_enrolment_required=False,
            )
        )
        return TotpEnrolment(secret, Totp(secret).provisioning_uri(name), recovery)

    def enroll_own_totp(self, session_id: str) -> TotpEnrolment:
        """A user replaces their own TOTP secret: only with a fresh second factor, unless
        a response reset their factors and this is the enrolment it asks for."""
        record, user = self.authenticate(session_id, enrolling=True)
        if not user.mfa_enrolment_required:
            self.require_step_up(record, Operation.CHANGE_AUTHENTICATOR)
        enrolment = self.enroll_totp(user.name)
        self._emit(
            SignInKind.MFA, Outcome.SUCCESS, user.name, mfa_method="totp-enrol", session=record
        )
        return enrolment

    def issue_token(self, name: str, scopes: tuple[str, ...], lifetime: timedelta) -> str:
        user = self.user(name)
        if user.locked_at(self.clock.now()):
            raise AccountError(f"{name} is locked")
        return self.tokens.issue(name, scopes, lifetime)

    # -- sign-in ------------------------------------------------------------------

    def login(
        self, username: str, password: str, code: str | None, source_ip: str | None = None
    ) -> IssuedSession:
        """A new session for the right name, password and second factor; else
        ``InvalidCredentials``, the same for every reason."""
        now = self.clock.now()
        name = username.strip().lower()[:64]
        keys = (_account_key(name), f"ip:{source_ip or '-'}")
        user = self.store.get_user(name) if NAME_PATTERN.match(name) else None
        if any(self.backoff.wait(key, now) > 0 for key in keys):
            # Refused before hashing: under a flood the waits, not Argon2, take the load.
            # Being throttled depends on the name and address tried, never on whether
            # the account exists, so the shorter answer tells nothing about accounts.
            return self._refuse(name, user, keys, source_ip)
        password_ok = self.hasher.verify(user.password_hash if user else None, password)
        mfa_method = None
        if user is None or user.locked_at(now) or not password_ok:
            return self._refuse(name, user, keys, source_ip)
        if user.totp_enabled:
            mfa_method = self._second_factor(user, code or "", now)
            self._emit(
                SignInKind.MFA,
                Outcome.SUCCESS if mfa_method else Outcome.MINOR_FAILURE,
                name,
                source_ip=source_ip,
                mfa_method=mfa_method or "totp",
            )
            if mfa_method is None:
                return self._refuse(name, user, keys, source_ip)
        elif (
            self.config.require_second_factor and not user.mfa_enrolment_required
        ) or user.kind is AccountKind.SERVICE:
            # An account whose factors a response reset signs in with its password once,
            # and its session may do nothing but enrol a new factor (``authenticate``).
            return self._refuse(name, user, keys, source_ip)
        self.backoff.clear(keys[0])
        if user.failed_logins:
            self.store.reset_failed_logins(name)
        if user.password_hash and self.hasher.needs_rehash(user.password_hash):
            fresh = self.store.get_user(name) or user
            self.store.save_user(replace(fresh, password_hash=self.hasher.hash(password)))
        issued = self.sessions.start(name, mfa_method=mfa_method, source_ip=source_ip)
        self._emit(
            SignInKind.LOGIN,
            Outcome.SUCCESS,
            name,
            source_ip=source_ip,
            mfa_method=mfa_method,
            session=issued.record,
        )
        return issued

    def _second_factor(self, user: UserAccount, code: str, now: datetime) -> str | None:
        if looks_like_recovery_code(code):
            if self.store.consume_recovery_code(user.name, recovery_digest(code)):
                return "recovery_code"
            return None
        if user.totp_sealed is None or not code:
            return None
        secret = self.sealer.open(user.totp_sealed, user.name).decode()
        step = Totp(secret).matching_step(code, at_step=step_of(now))
        if step is None:
            return None
        if not self.store.claim_totp_step(user.name, step):
            # A right code used a second time: a stolen or shoulder-surfed code (ASVS 2.8.5).
            self._emit(SignInKind.MFA, Outcome.SERIOUS_FAILURE, user.name, mfa_method="totp-reused")
            return None
        return "totp"

    def _refuse(
        self,
        name: str,
        user: UserAccount | None,
        keys: tuple[str, ...],
        source_ip: str | None,
    ) -> IssuedSession:
        now = self.clock.now()
        for key in keys:
            self.backoff.fail(key, now)
        if user is not None and self.store.record_failed_login(
            user.name, self.config.lock_threshold, now + self.config.lock_duration
        ):
            self.sessions.revoke_all(user.name)
            self._emit(SignInKind.LOCKOUT, Outcome.SUCCESS, name, source_ip=source_ip)
        self._emit(
            SignInKind.LOGIN, Outcome.MINOR_FAILURE, self._who(name, user), source_ip=source_ip
        )
        raise InvalidCredentials()

    def _who(self, name: str, user: UserAccount | None) -> str:
        """The name to record for an attempt: an account's name, or a keyed digest of what
        was typed when no account has it (people type passwords into the name field).
        The same typed name always gives the same digest, so a spray is still visible."""
        if user is not None:
            return user.name
        return "unknown:" + self.sealer.digest("signin-name:" + name)[:16]

    def logout(self, session_id: str) -> None:
        try:
            record = self.sessions.check(session_id)
        except NotAuthenticated:  # an expired or unknown session is already logged out
            return
        self.sessions.end(session_id)
        self._emit(SignInKind.LOGOUT, Outcome.SUCCESS, record.user_name, session=record)

    def authenticate(
        self, session_id: str, *, enrolling: bool = False
    ) -> tuple[SessionRecord, UserAccount]:
        """The live session and its account, or ``NotAuthenticated``; an account that
        must enrol a second factor gets ``EnrolmentRequired`` unless ``enrolling``."""
        record = self.sessions.check(session_id)
        user = self.store.get_user(record.user_name)
        if user is None or user.locked_at(self.clock.now()):
            self.sessions.end(session_id)
            raise NotAuthenticated()
        if user.mfa_enrolment_required and not enrolling:
            raise EnrolmentRequired()
        return record, user

    # -- step-up ------------------------------------------------------------------

    def step_up(self, session_id: str, code: str) -> IssuedSession:
        """Verify a fresh TOTP code in a live session; the session gets a new id."""
        record, user = self.authenticate(session_id)
        now = self.clock.now()
        method = self._second_factor(user, code, now) if user.totp_enabled else None
        self._emit(
            SignInKind.STEP_UP,
            Outcome.SUCCESS if method else Outcome.MINOR_FAILURE,
            user.name,
            source_ip=record.source_ip,
            mfa_method=method or "totp",
            session=record,
        )
        if method is None:
            raise InvalidCredentials()
        self._demand_met(user)
        return self.sessions.rotate(record, mfa_at=now, mfa_method=method)

    def list_sessions(self, session_id: str) -> list[dict]:
        """The user's live sessions: when and where they began, last use, the factor."""
        record, user = self.authenticate(session_id)
        return [
            {
                "session": self.sessions.handle(s),
                "current": s.key == record.key,
                "created_at": s.created_at.isoformat(),
                "last_seen": s.last_seen.isoformat(),
                "source_ip": s.source_ip,
                "mfa_method": s.mfa_method,
            }
            for s in self.sessions.live_sessions_of(user.name)
        ]

    def end_other_sessions(self, session_id: str, handle: str | None = None) -> int:
        """End one other session of the user (by handle), or all others; needs a fresh
        second factor, as ASVS 3.3.4 asks for re-entered credentials."""
        record, user = self.authenticate(session_id)
        self.require_step_up(record, Operation.MANAGE_SESSIONS)
        ended = 0
        for other in self.store.sessions_of(user.name):
            if other.key != record.key and handle in (None, self.sessions.handle(other)):
                self.store.delete_session(other.key)
                ended += 1
        self._emit(
            SignInKind.LOGOUT, Outcome.SUCCESS, user.name, device=f"{ended} ended", session=record
        )
        return ended

    def require_step_up(self, record: SessionRecord, operation: Operation) -> None:
        """``StepUpRequired`` unless the session's second factor is fresh enough for
        ``operation`` and, when a response demanded a step-up, given after the demand."""
        self.step_up_policy.require(record, operation, self.clock.now())
        user = self.store.get_user(record.user_name)
        demanded = user.step_up_demanded_at if user else None
        if demanded is not None and (record.mfa_at is None or record.mfa_at < demanded):
            raise StepUpRequired(
                f"{operation} needs a second factor given after {demanded:%Y-%m-%d %H:%M} UTC"
            )

    def _demand_met(self, user: UserAccount) -> None:
        if user.step_up_demanded_at is not None:
            self.store.save_user(replace(self.user(user.name), step_up_demanded_at=None))

    # -- passkeys -----------------------------------------------------------------

    def passkey_registration_options(self, session_id: str) -> tuple[str, dict]:
        _, user = self.authenticate(session_id, enrolling=True)
        return self.passkeys.registration_options(user)

    def register_passkey(self, session_id: str, ceremony: str, credential: dict) -> None:
        record, user = self.authenticate(session_id, enrolling=True)
        self.passkeys.finish_registration(ceremony, user.name, credential)
        if user.mfa_enrolment_required:
            self.store.save_user(replace(self.user(user.name), mfa_enrolment_required=False))
        self._emit(
            SignInKind.MFA,
            Outcome.SUCCESS,
            user.name,
            mfa_method="webauthn-register",
            session=record,
        )

    def passkey_login(
        self, ceremony: str, credential: dict, source_ip: str | None = None
    ) -> IssuedSession:
        """Sign in with a passkey (it is possession and, with user verification, a
        biometric or PIN check on the device: two factors in one gesture)."""
        try:
            use = self.passkeys.finish_authentication(ceremony, credential)
        except PasskeyError:
            self.backoff.fail(f"ip:{source_ip or '-'}", self.clock.now())
            self._emit(
                SignInKind.LOGIN,
                Outcome.MINOR_FAILURE,
                "(passkey)",
                source_ip=source_ip,
                mfa_method="webauthn",
            )
            raise
        user = self.store.get_user(use.passkey.user_name)
        if user is None or user.locked_at(self.clock.now()):
            self._emit(
                SignInKind.LOGIN, Outcome.MINOR_FAILURE, use.passkey.user_name, source_ip=source_ip
            )
            raise InvalidCredentials()
        issued = self.sessions.start(
            user.name, mfa_method="webauthn", verified=use.user_verified, source_ip=source_ip
        )
        self._emit(
            SignInKind.LOGIN,
            Outcome.SUCCESS,
            user.name,
            source_ip=source_ip,
            mfa_method="webauthn-uv" if use.user_verified else "webauthn",
            session=issued.record,
        )
        return issued

    def passkey_step_up(self, session_id: str, ceremony: str, credential: dict) -> IssuedSession:
        """A passkey used inside a live session: step-up, with user verification when
        the ceremony asked for it; the session gets a new id."""
        record, user = self.authenticate(session_id)
        use = self.passkeys.finish_authentication(ceremony, credential)
        ok = use.passkey.user_name == user.name
        self._emit(
            SignInKind.STEP_UP,
            Outcome.SUCCESS if ok else Outcome.MINOR_FAILURE,
            user.name,
            mfa_method="webauthn-uv" if use.user_verified else "webauthn",
            session=record,
        )
        if not ok:
            raise PasskeyError("this passkey belongs to another account")
        self._demand_met(user)
        now = self.clock.now()
        return self.sessions.rotate(
            record,
            mfa_at=now,
            mfa_method="webauthn",
            verified_at=now if use.user_verified else record.verified_at,
        )

    # -- events -------------------------------------------------------------------

    def _emit(
        self,
        kind: SignInKind,
        outcome: Outcome,
        user_name: str,
        *,
        source_ip: str | None = None,
        mfa_method: str | None = None,
        session: SessionRecord | None = None,
        device: str | None = None,
    ) -> None:
        self.recorder.record(
            SignInEvent(
                event_id=secrets.token_hex(16),
                time=self.clock.now(),
                user_id=user_name,
                kind=kind,
                outcome=outcome,
                source_ip=source_ip,
                device=device,
                application=APPLICATION,
                # The digest of the session id, never the id itself.
                session_id=session.key[:32] if session else None,
                mfa_method=mfa_method,
                source_format=APPLICATION,
            )
        )


def _account_key(name: str) -> str:
    return f"account:{name.strip().lower()}"
