"""Sealing small secrets at rest (TOTP secrets) and keyed digests (session ids, tokens).

The instance key is 32 random bytes kept in a 0600 file in the data directory (or
given in the environment); the composition root loads it and passes it in. Sealing is
AES-256-GCM with a random nonce; the account name is bound as associated data, so a
sealed secret copied onto another account does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custodes.core.errors import ConfigurationError

KEY_BYTES = 32


class SecretSealer:
    """Seal and open small secrets; derive keyed digests. Never logs or prints the key.

    >>> sealer = SecretSealer(bytes(32))
    >>> sealer.open(sealer.seal(b"JBSWY3DP", "alice"), "alice")
    b'JBSWY3DP'
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigurationError("the identity key must be 32 bytes")
        self._aead = AESGCM(hashlib.sha256(b"custodes seal" + key).digest())
        self._mac_key = hashlib.sha256(b"custodes digest" + key).digest()

    def seal(self, secret: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, secret, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], context.encode())
        except InvalidTag as err:
            raise ConfigurationError(
                "a sealed identity secret does not open with this instance key"
            ) from err

    def digest(self, secret: str) -> str:
        """A keyed SHA-256 digest (HMAC): a stolen table of digests is useless alone."""
        return hmac.new(self._mac_key, secret.encode(), hashlib.sha256).hexdigest()
