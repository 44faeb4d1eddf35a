"""Blind indexes: search on identifiers without decrypting anything.

An index value is HMAC-SHA256 of the normalised identifier under a key derived for its
purpose (HKDF-SHA256, ``info`` = the purpose): an MRN index cannot be compared with an
SSN index, and without the keyring secret a table of index values reveals nothing a
dictionary attack on names could use.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custodes.core.errors import InputFormatError

_SALT = b"custodes blind index v1"


def normalise_mrn(value: str) -> str:
    """Upper case, no spaces or dashes. ``normalise_mrn(" mrn-0042 ")`` is ``'MRN0042'``.

    >>> normalise_mrn(" mrn-0042 ")
    'MRN0042'
    """
    return re.sub(r"[\s\-_./]", "", value).upper()


def normalise_ssn(value: str) -> str:
    """Nine digits. ``normalise_ssn("123-45-6789")`` is ``'123456789'``.

    >>> normalise_ssn("123 45 6789")
    '123456789'
    """
    digits = re.sub(r"\D", "", value)
    if len(digits) != 9:
        raise InputFormatError("an SSN has nine digits")
    return digits


def normalise_name(value: str) -> str:
    """Accents dropped, case folded, punctuation removed, spaces collapsed.

    >>> normalise_name("  José  O'Brien-Núñez ")
    'jose obriennunez'
    """
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    letters = re.sub(r"[^\w\s]", "", letters.casefold())
    return " ".join(letters.split())


NORMALISERS: dict[str, Callable[[str], str]] = {
    "mrn": normalise_mrn,
    "ssn": normalise_ssn,
    "name": normalise_name,
}


def derive_key(secret: bytes, purpose: str | bytes, *, salt: bytes = _SALT, length: int = 32) -> bytes:
    """The key of one purpose: HKDF-SHA256 (RFC 5869) of the secret, ``info`` = purpose."""
    info = purpose.encode() if isinstance(purpose, str) else purpose
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def keyed_digest(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) of ``message``."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


class BlindIndex:
    """Index values per purpose; equal identifiers (after normalising) give equal values.

    >>> index = BlindIndex(bytes(32))
    >>> index.value("mrn", "mrn-0042") == index.value("mrn", "MRN 0042")
    True
    >>> index.value("mrn", "42") == index.value("name", "42")
    False
    """

    def __init__(self, secret: bytes) -> None:
        self._keys = {purpose: derive_key(secret, purpose) for purpose in NORMALISERS}

    def value(self, purpose: str, identifier: str) -> str:
        try:
            key, normalise = self._keys[purpose], NORMALISERS[purpose]
        except KeyError:
            raise InputFormatError(f"no blind index for {purpose!r}; use mrn, ssn or name") from None
        return keyed_digest(key, normalise(identifier).encode()).hex()
