"""TOTP against the RFC 6238 test vectors, the ±1 step window, replay and recovery codes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from custodes.identity.errors import InvalidCredentials
from custodes.identity.totp import Totp, new_recovery_codes, qr_svg, recovery_digest

from .conftest import PASSWORD

SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# RFC 6238, Appendix B: time, algorithm, 8-digit TOTP.
RFC6238_VECTORS = [
    (59, "sha1", "94287082"),
    (59, "sha256", "46119246"),
    (59, "sha512", "90693936"),
    (1111111109, "sha1", "07081804"),
    (1111111109, "sha256", "68084774"),
    (1111111109, "sha512", "25091201"),
    (1111111111, "sha1", "14050471"),
    (1111111111, "sha256", "67062674"),
    (1111111111, "sha512", "99943326"),
    (1234567890, "sha1", "89005924"),
    (1234567890, "sha256", "91819424"),
    (1234567890, "sha512", "93441116"),
    (2000000000, "sha1", "69279037"),
    (2000000000, "sha256", "90698825"),
    (2000000000, "sha512", "38618901"),
    (20000000000, "sha1", "65353130"),
    (20000000000, "sha256", "77737706"),
    (20000000000, "sha512", "47863826"),
]


@pytest.mark.parametrize(("unix_time", "digest", "expected"), RFC6238_VECTORS)
def test_rfc6238_vectors(unix_time, digest, expected):
    secret = base64.b32encode(SEEDS[digest]).decode()
    totp = Totp(secret, digits=8, digest=digest)
    assert totp.code_at(datetime.fromtimestamp(unix_time, UTC)) == expected


def test_window_accepts_one_step_either_side_and_no_more():
    totp = Totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    for offset in (-1, 0, 1):
        assert totp.matching_step(totp.code_at_step(100 + offset), at_step=100) == 100 + offset
    for offset in (-2, 2):
        assert totp.matching_step(totp.code_at_step(100 + offset), at_step=100) is None


def test_a_code_is_accepted_once(door):
    door.person()
    code = door.code()
    door.service.login("alice", PASSWORD, code, "10.0.0.1")
    with pytest.raises(InvalidCredentials):
        door.service.login("alice", PASSWORD, code, "10.0.0.1")


def test_an_older_code_is_refused_after_a_newer_one(door):
    door.person()
    door.service.login("alice", PASSWORD, door.code(steps_ahead=1), "10.0.0.1")
    with pytest.raises(InvalidCredentials):
        door.service.login("alice", PASSWORD, door.code(), "10.0.0.1")


def test_recovery_codes_work_once_and_are_stored_hashed(door):
    door.person()
    code = door.recovery["alice"][0]
    stored = door.store.get_user("alice").recovery_hashes
    assert code not in stored and recovery_digest(code) in stored
    door.service.login("alice", PASSWORD, code, "10.0.0.1")
    with pytest.raises(InvalidCredentials):
        door.service.login("alice", PASSWORD, code, "10.0.0.1")
    assert len(door.store.get_user("alice").recovery_hashes) == 9


def test_secret_is_sealed_at_rest(door):
    door.person()
    sealed = door.store.get_user("alice").totp_sealed
    assert door.secrets["alice"].encode() not in sealed


def test_recovery_codes_are_distinct_and_long():
    codes = new_recovery_codes().codes
    assert len(set(codes)) == 10 and all(len(c.replace("-", "")) == 24 for c in codes)


def test_enrolment_uri_and_qr_code(door):
    door.service.add_user("bob", "clinician", PASSWORD)
    enrolment = door.service.enroll_totp("bob")
    assert enrolment.uri.startswith("otpauth://totp/Custodes:bob?secret=")
    assert "issuer=Custodes" in enrolment.uri
    assert qr_svg(enrolment.uri).startswith("<svg")
