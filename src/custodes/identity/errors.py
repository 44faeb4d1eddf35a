"""The errors of the front door. Each is one line and never names a secret."""

from __future__ import annotations

from custodes.core.errors import CustodesError

#: The one answer to every failed sign-in, whatever the reason.
INVALID_CREDENTIALS = "invalid credentials"


class InvalidCredentials(CustodesError):
    """A sign-in failed. Deliberately silent about why (unknown user, wrong password,
    wrong code, locked or throttled account all read the same)."""

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class PasswordRejected(CustodesError):
    """A new password does not meet the policy; the message says what to change."""


class AccountError(CustodesError):
    """An account operation cannot be done (unknown name, name taken, wrong kind)."""


class NotAuthenticated(CustodesError):
    """No valid session or token: missing, expired, idle too long, or revoked."""

    def __init__(self, message: str = "sign in first") -> None:
        super().__init__(message)


class StepUpRequired(CustodesError):
    """The operation needs a fresh second factor (or a verified passkey)."""


class EnrolmentRequired(CustodesError):
    """The account's second factors were reset: it must enrol one before anything else."""

    def __init__(self) -> None:
        super().__init__("enrol a second factor first (TOTP or a passkey): yours were reset")


class PasskeyError(CustodesError):
    """A WebAuthn ceremony failed; the message says which step, never the key material."""
