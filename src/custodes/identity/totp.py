"""TOTP (RFC 6238) second factor: enrolment with a QR code, verification, recovery codes.

A code is accepted within one 30-second step either side of now (clock drift on the
phone), and only once: the store keeps the last accepted step, and a code for that
step or an earlier one is refused (``IdentityStore.claim_totp_step``). Recovery codes
are random, shown once, and stored as SHA-256 digests (they carry 120 random bits, more
than the 112 that ASVS 2.6.2 asks before a plain hash is enough).

>>> totp = Totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
>>> totp.code_at_step(0)
'702218'
>>> totp.matching_step("702218", at_step=1, window=1)
0
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno

STEP_SECONDS = 30
RECOVERY_CHARS = 24
ISSUER = "Custodes"


def new_secret() -> str:
    """160 random bits, base32, as RFC 4226 recommends for HMAC-SHA1."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def step_of(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


class Totp:
    """One TOTP generator over a base32 secret; ``digits`` and ``digest`` as RFC 6238."""

    def __init__(self, secret: str, *, digits: int = 6, digest: str = "sha1") -> None:
        self._otp = pyotp.TOTP(
            secret, digits=digits, digest=getattr(hashlib, digest), interval=STEP_SECONDS
        )

    def code_at_step(self, step: int) -> str:
        return self._otp.generate_otp(step)

    def code_at(self, at: datetime) -> str:
        return self.code_at_step(step_of(at))

    def matching_step(self, code: str, *, at_step: int, window: int = 1) -> int | None:
        """The step within ``window`` of ``at_step`` whose code is ``code``, or None.

        Every candidate is compared in constant time, and all are computed, so the time
        taken does not say which step matched.
        """
        code = code.strip().replace(" ", "")
        found = None
        for step in range(at_step - window, at_step + window + 1):
            if hmac.compare_digest(self.code_at_step(step), code) and found is None:
                found = step
        return found

    def provisioning_uri(self, account: str, issuer: str = ISSUER) -> str:
        """The ``otpauth://`` URI authenticator apps read from the QR code."""
        return self._otp.provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an SVG document (pure Python, no network)."""
    return segno.make(uri, error="m").svg_inline(scale=4)


def qr_terminal(uri: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    import io

    buffer = io.StringIO()
    segno.make(uri, error="m").terminal(out=buffer, compact=True)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class RecoveryCodes:
    """Codes shown once (``codes``) and what is stored (``digests``)."""

    codes: tuple[str, ...]
    digests: tuple[str, ...]


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def new_recovery_codes(count: int = 10) -> RecoveryCodes:
    """``count`` codes of 24 base32 characters (120 bits), written in groups of four."""
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_CHARS, 4)))
    return RecoveryCodes(tuple(codes), tuple(recovery_digest(c) for c in codes))


def looks_like_recovery_code(code: str) -> bool:
    return len(code.strip().replace("-", "")) == RECOVERY_CHARS
