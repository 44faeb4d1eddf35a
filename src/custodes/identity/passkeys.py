"""WebAuthn passkeys (py_webauthn): registration and authentication ceremonies.

A passkey is a key pair made and kept by the person's own device or password manager;
the server stores only the public key. With *user verification* the device checks who
holds it (fingerprint, face, or device PIN) before it signs; that check happens on the
device, and no biometric ever reaches Custodes: the server learns one bit, "the device
verified its user". That is how Custodes offers biometric sign-in.

Registration always requires a discoverable credential with user verification.
Authentication requires user verification when the caller asks: for a sign-in with the
passkey alone (so it stays two factors) and for the most sensitive tier of records. A sign counter that does not advance is logged as a
warning and accepted: synced passkeys always report 0, and refusing them would lock out
every iCloud Keychain or Google Password Manager user.

Challenges are kept in the process for ``ttl`` and used once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import orjson
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from custodes.core.accounts import PasskeyCredential, UserAccount
from custodes.core.clock import Clock
from custodes.core.ports import IdentityStore
from custodes.identity.errors import PasskeyError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the passkeys are for: the RP id (a domain) and the origins allowed to ask."""

    rp_id: str = "localhost"
    name: str = "Custodes"
    origins: tuple[str, ...] = ("http://localhost:8000",)


@dataclass(frozen=True, slots=True)
class _Pending:
    challenge: bytes
    user_name: str | None
    require_verification: bool
    expires: datetime


@dataclass(frozen=True, slots=True)
class PasskeyUse:
    passkey: PasskeyCredential
    user_verified: bool


def user_handle(name: str) -> bytes:
    """The WebAuthn user id: a digest of the name, as the spec asks for no personal data."""
    return hashlib.sha256(b"custodes user:" + name.encode()).digest()


class PasskeyCeremonies:
    def __init__(
        self,
        store: IdentityStore,
        clock: Clock,
        party: RelyingParty | None = None,
        ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self.store = store
        self.clock = clock
        self.party = party or RelyingParty()
        self.ttl = ttl
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def _remember(self, challenge: bytes, user_name: str | None, verify: bool) -> str:
        ceremony = secrets.token_urlsafe(16)
        now = self.clock.now()
        with self._lock:
            for key in [k for k, p in self._pending.items() if p.expires < now]:
                del self._pending[key]
            self._pending[ceremony] = _Pending(challenge, user_name, verify, now + self.ttl)
        return ceremony

    def _take(self, ceremony: str) -> _Pending:
        with self._lock:
            pending = self._pending.pop(ceremony, None)
        if pending is None or pending.expires < self.clock.now():
            raise PasskeyError("the passkey ceremony is unknown or expired; start again")
        return pending

    def _verify(self, what: str, verify: Callable[..., T], **arguments) -> T:
        """Run a py_webauthn verification for this relying party; one error type out."""
        try:
            return verify(
                expected_rp_id=self.party.rp_id,
                expected_origin=list(self.party.origins),
                **arguments,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as err:
            raise PasskeyError(f"the passkey {what} was not accepted: {err}") from err

    def registration_options(self, user: UserAccount) -> tuple[str, dict]:
        options = generate_registration_options(
            rp_id=self.party.rp_id,
            rp_name=self.party.name,
            user_name=user.name,
            user_id=user_handle(user.name),
            user_display_name=user.name,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=p.credential_id)
                for p in self.store.passkeys_of(user.name)
            ],
        )
        ceremony = self._remember(options.challenge, user.name, True)
        return ceremony, orjson.loads(options_to_json(options))

    def finish_registration(
        self, ceremony: str, user_name: str, credential: dict
    ) -> PasskeyCredential:
        pending = self._take(ceremony)
        if pending.user_name != user_name:
            raise PasskeyError("the passkey ceremony belongs to another session")
        verified = self._verify(
            "registration",
            verify_registration_response,
            credential=credential,
            expected_challenge=pending.challenge,
            require_user_verification=True,
        )
        passkey = PasskeyCredential(
            credential_id=verified.credential_id,
            user_name=user_name,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            backed_up=verified.credential_backed_up,
            created_at=self.clock.now(),
        )
        self.store.add_passkey(passkey)
        return passkey

    def authentication_options(
        self, user_name: str | None = None, *, require_verification: bool = False
    ) -> tuple[str, dict]:
        allow = (
            [
                PublicKeyCredentialDescriptor(id=p.credential_id)
                for p in self.store.passkeys_of(user_name)
            ]
            if user_name
            else None
        )
        options = generate_authentication_options(
            rp_id=self.party.rp_id,
            allow_credentials=allow,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if require_verification
                else UserVerificationRequirement.PREFERRED
            ),
        )
        ceremony = self._remember(options.challenge, user_name, require_verification)
        return ceremony, orjson.loads(options_to_json(options))

    def finish_authentication(self, ceremony: str, credential: dict) -> PasskeyUse:
        pending = self._take(ceremony)
        try:
            raw_id = base64url_to_bytes(str(credential.get("rawId") or credential.get("id")))
        except (ValueError, TypeError) as err:
            raise PasskeyError("the passkey response has no credential id") from err
        passkey = self.store.get_passkey(raw_id)
        if passkey is None or (pending.user_name and passkey.user_name != pending.user_name):
            raise PasskeyError("this passkey is not registered here")
        # The counter is checked below, as a warning; py_webauthn would refuse.
        verified = self._verify(
            "sign-in",
            verify_authentication_response,
            credential=credential,
            expected_challenge=pending.challenge,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=pending.require_verification,
        )
        if (verified.new_sign_count or passkey.sign_count) and (
            verified.new_sign_count <= passkey.sign_count
        ):
            log.warning(
                "passkey sign counter of %s did not advance (stored %d, reported %d): "
                "a cloned authenticator, or a passkey synced between devices",
                passkey.user_name,
                passkey.sign_count,
                verified.new_sign_count,
            )
        now = self.clock.now()
        self.store.update_passkey_use(
            passkey.credential_id, max(verified.new_sign_count, passkey.sign_count), now
        )
        return PasskeyUse(passkey, verified.user_verified)
