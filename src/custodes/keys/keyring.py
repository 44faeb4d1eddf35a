"""The local keyring: versioned key-encryption keys (KEKs) held in one 0600 file.

Implements the ``KeyService`` port. Each version is 32 random bytes; wrapping is
AES-256-GCM with a random 96-bit nonce and the caller's context as associated data.
The keyring also holds the secret blind indexes derive from (it never rotates: a new
one would make every stored index unsearchable).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custodes.core.errors import ConfigurationError
from custodes.core.ports import WrappedKey
from custodes.keys.keyfile import read_or_create, replace_private

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = 1


class LocalKeyring:
    """Versioned KEKs in memory, persisted through ``save`` after every change.

    >>> ring = LocalKeyring.generate(random=lambda n: bytes(n))
    >>> wrapped = ring.wrap(b"k" * 32, b"ctx")
    >>> ring.unwrap(wrapped, b"ctx") == b"k" * 32
    True
    """

    def __init__(
        self,
        versions: dict[int, bytes],
        current: int,
        index_secret: bytes,
        *,
        save: Callable[[LocalKeyring], None] | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if current not in versions or any(len(k) != KEY_BYTES for k in versions.values()):
            raise ConfigurationError("the keyring is damaged: its current version is missing")
        self._keys = dict(sorted(versions.items()))
        self._current = current
        self._index_secret = index_secret
        self._save = save
        self._random = random

    @classmethod
    def generate(
        cls,
        *,
        save: Callable[[LocalKeyring], None] | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> LocalKeyring:
        return cls({1: random(KEY_BYTES)}, 1, random(KEY_BYTES), save=save, random=random)

    # --- the file ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "format": _FORMAT,
                "current": self._current,
                "versions": {str(v): base64.b64encode(k).decode() for v, k in self._keys.items()},
                "index": base64.b64encode(self._index_secret).decode(),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs) -> LocalKeyring:
        try:
            doc = orjson.loads(data)
            versions = {int(v): base64.b64decode(k, validate=True) for v, k in doc["versions"].items()}
            return cls(versions, int(doc["current"]), base64.b64decode(doc["index"]), **kwargs)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ConfigurationError("the keyring file is damaged or not a Custodes keyring") from err

    @classmethod
    def open_file(cls, path: Path, random: Callable[[int], bytes] = os.urandom) -> LocalKeyring:
        """The keyring in ``path``, made 0600 on first use; refused if others may read it."""

        def save(ring: LocalKeyring) -> None:
            replace_private(path, ring.to_bytes())

        data = read_or_create(path, lambda: cls.generate(random=random).to_bytes())
        return cls.from_bytes(data, save=save, random=random)

    # --- KeyService ----------------------------------------------------------------------

    def current_version(self) -> int:
        return self._current

    def versions(self) -> list[int]:
        return list(self._keys)

    def wrap(self, key: bytes, context: bytes) -> WrappedKey:
        nonce = self._random(NONCE_BYTES)
        blob = nonce + AESGCM(self._keys[self._current]).encrypt(nonce, key, context)
        return WrappedKey(self._current, blob)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        kek = self._keys.get(wrapped.version)
        if kek is None or len(wrapped.blob) < NONCE_BYTES + 16:
            raise ValueError("does not unwrap")
        try:
            return AESGCM(kek).decrypt(wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:], context)
        except InvalidTag:
            raise ValueError("does not unwrap") from None

    def add_version(self) -> int:
        version = max(self._keys) + 1
        self._keys[version] = self._random(KEY_BYTES)
        self._current = version
        self._persist()
        return version

    def retire(self, version: int) -> None:
        if version == self._current:
            raise ConfigurationError("the current key version cannot be retired")
        if self._keys.pop(version, None) is not None:
            self._persist()

    def index_secret(self) -> bytes:
        """The root secret of the blind indexes (``BlindIndex`` derives per-purpose keys)."""
        return self._index_secret

    def _persist(self) -> None:
        if self._save is not None:
            self._save(self)
