"""Published vectors for the primitives the key recipes use."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custodes.keys.blind_index import derive_key, keyed_digest

# McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14
# (AES-256), as in NIST's GCM validation suite.
GCM_VECTORS = [
    ("00" * 32, "00" * 12, "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    ("00" * 32, "00" * 12, "00" * 16, "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "nonce", "plain", "cipher", "tag"), GCM_VECTORS)
def test_aes_256_gcm_vectors(key, nonce, plain, cipher, tag):
    sealed = AESGCM(bytes.fromhex(key)).encrypt(bytes.fromhex(nonce), bytes.fromhex(plain), None)
    assert sealed.hex() == cipher + tag
    assert AESGCM(bytes.fromhex(key)).decrypt(bytes.fromhex(nonce), sealed, None).hex() == plain


def test_hkdf_rfc5869_case_1():
    okm = derive_key(
        bytes.fromhex("0b" * 22),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize(
    ("key", "data", "mac"),
    [
        (bytes.fromhex("0b" * 20), b"Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe", b"what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ],
)  # fmt: skip
def test_hmac_sha256_rfc4231(key, data, mac):
    assert keyed_digest(key, data).hex() == mac
