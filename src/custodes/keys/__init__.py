"""Keys: envelope encryption recipes over ``cryptography``, the local keyring, blind indexes.

The one place for encryption recipes. ``custodes.identity.sealing`` predates it and
still seals TOTP secrets with its own AES-GCM; it should move onto these recipes.
"""

from custodes.keys.blind_index import BlindIndex
from custodes.keys.envelope import (
    EnvelopeCipher,
    KeyScope,
    MemoryScopeKeyStore,
    RecordRef,
    RotationProgress,
    SealedRecord,
    Tier,
)
from custodes.keys.errors import Undecryptable
from custodes.keys.keyring import LocalKeyring

__all__ = [
    "BlindIndex",
    "EnvelopeCipher",
    "KeyScope",
    "LocalKeyring",
    "MemoryScopeKeyStore",
    "RecordRef",
    "RotationProgress",
    "SealedRecord",
    "Tier",
    "Undecryptable",
]
