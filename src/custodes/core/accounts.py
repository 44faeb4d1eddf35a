"""Accounts of the people and services that sign in to Custodes, and their credentials.

These records cross the identity port (``IdentityStore``): the identity service builds
them, the storage adapters keep them. Secrets never appear here in the clear: passwords
are Argon2id hashes, TOTP secrets are sealed (AES-GCM), session ids, API tokens and
recovery codes are stored as keyed or plain SHA-256 digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """The roles of the access policy."""

    CLINICIAN = "clinician"
    NURSE = "nurse"
    FRONT_DESK = "front_desk"
    BILLING = "billing"
    HIM = "him"
    RESEARCHER = "researcher"
    PRIVACY_OFFICER = "privacy_officer"
    ADMINISTRATOR = "administrator"


class AccountKind(StrEnum):
    """A person signs in with a password and a second factor; a service uses API tokens."""

    PERSON = "person"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class UserAccount:
    """One account. ``name`` is the sign-in name and the id used in events.

    ``totp_sealed`` is the TOTP secret sealed with the instance key, ``totp_last_step``
    the last 30-second step accepted (the replay guard), ``recovery_hashes`` the SHA-256
    digests of the unused recovery codes. ``failed_logins`` counts consecutive failures;
    ``locked_until`` is set when they reach the threshold, or far in the future when an
    administrator locks the account. ``step_up_demanded_at`` and
    ``mfa_enrolment_required`` are set by responses to a case (docs/cases.md).
    """

    name: str
    role: Role
    kind: AccountKind = AccountKind.PERSON
    password_hash: str | None = None
    totp_sealed: bytes | None = None
    totp_enabled: bool = False
    totp_last_step: int = -1
    recovery_hashes: tuple[str, ...] = ()
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    #: A response asked that the next sensitive operation needs a second factor given
    #: after this moment, however fresh the session's last one.
    step_up_demanded_at: datetime | None = None
    #: A response reset the second factors: the account must enrol one again before
    #: its sessions may do anything else.
    mfa_enrolment_required: bool = False

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True, slots=True)
class PasskeyCredential:
    """A WebAuthn credential registered to an account (its public key only)."""

    credential_id: bytes
    user_name: str
    public_key: bytes
    sign_count: int = 0
    backed_up: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session, keyed by the SHA-256 digest of its id.

    ``mfa_at`` is when a second factor was last verified in this session (step-up reads
    it); ``verified_at`` when a passkey with user verification was last used.
    """

    key: str
    user_name: str
    created_at: datetime
    last_seen: datetime
    mfa_at: datetime | None = None
    mfa_method: str | None = None
    verified_at: datetime | None = None
    source_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """A scoped, expiring API token; ``digest`` is a keyed hash of its secret part."""

    token_id: str
    user_name: str
    digest: str
    scopes: tuple[str, ...] = field(default_factory=tuple)
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked: bool = False
