"""The password policy (NIST SP 800-63B, length first) and Argon2id hashing."""

from __future__ import annotations

import pytest

from custodes.identity.passwords import (
    Argon2Parameters,
    PasswordHasher,
    PasswordPolicy,
    common_passwords,
)
from custodes.identity.service import IdentityConfig, IdentityService

from .conftest import CHEAP_ARGON2, PASSWORD, FrontDoor


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("correct horse battery staple", True),
        ("tr0ub4dor&3 is not enough?", True),
        ("all lower case no digits at all", True),  # no composition rules
        ("Ünïcödé pässwörd ünd mehr", True),
        ("short", False),
        ("elevenchars", False),
        ("password1234", False),  # common
        ("Password1234", False),  # common, whatever the case
        ("qwertyuiop123", False),
        ("123456789012", False),
        ("aaaaaaaaaaaaaaaa", False),  # repeats
        ("alice-is-my-password", False),  # contains the account name
        ("x" * 129, False),
        ("a long passphrase " * 7, True),  # 126 characters
        ("ab" + " " * 12, False),  # runs of spaces count once
        ("tab\tinside password", False),
    ],
)
def test_policy_table(password, accepted):
    assert (PasswordPolicy().problem(password, "alice") is None) is accepted


def test_bundled_list_has_thousands_of_entries():
    assert len(common_passwords()) > 5000


def test_hash_is_argon2id_and_verifies():
    hasher = PasswordHasher(CHEAP_ARGON2)
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, PASSWORD)
    assert not hasher.verify(stored, PASSWORD + "!")
    assert not hasher.verify(None, PASSWORD)  # the dummy hash never admits anyone
    assert not hasher.verify("not a hash", PASSWORD)


def test_normalisation_makes_equivalent_forms_equal():
    hasher = PasswordHasher(CHEAP_ARGON2)
    stored = hasher.hash("caf\u00e9 au lait, s'il vous plait")
    assert hasher.verify(stored, "cafe\u0301 au lait, s'il vous plait")


def test_login_rehashes_when_the_parameters_change():
    door = FrontDoor()
    door.person()
    old = door.store.get_user("alice").password_hash
    stronger = IdentityService(
        door.store,
        door.service.sealer,
        door.clock,
        config=IdentityConfig(
            argon2=Argon2Parameters(time_cost=2, memory_cost_kib=16, parallelism=1)
        ),
    )
    stronger.login("alice", PASSWORD, door.code(), "10.0.0.1")
    new = door.store.get_user("alice").password_hash
    assert new != old and "t=2" in new and "m=16" in new
    assert stronger.hasher.verify(new, PASSWORD)


def test_at_most_max_concurrent_hashes_run_at_once():
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    hasher = PasswordHasher(replace(CHEAP_ARGON2, max_concurrent=2))
    stored = hasher.hash(PASSWORD)
    running, peak, lock = [0], [0], threading.Lock()
    real = hasher._argon2.verify
    gate = threading.Barrier(2, timeout=5)

    def counting_verify(hash_, password):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            gate.wait()  # two may meet here; a third would have to wait its turn
            return real(hash_, password)
        finally:
            with lock:
                running[0] -= 1

    hasher._argon2 = type("Counting", (), {"verify": staticmethod(counting_verify)})()
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda _: hasher.verify(stored, PASSWORD), range(8)))
    assert peak[0] == 2
