from __future__ import annotations

import os
from dataclasses import replace

import pytest

from custodes.core.errors import ConfigurationError, InputFormatError
from custodes.keys import (
    BlindIndex,
    EnvelopeCipher,
    LocalKeyring,
    MemoryScopeKeyStore,
    RecordRef,
    Tier,
    Undecryptable,
)
from custodes.keys.keyfile import read_or_create

OBS = RecordRef("obs-1", "Observation", 1, Tier.STANDARD, patient_id="p1")
NOTE = RecordRef("note-9", "DocumentReference", 3, Tier.SENSITIVE, patient_id="p1")
ORG = RecordRef("org-1", "Organization", 1, Tier.ORGANISATIONAL)
OTHER = RecordRef("obs-2", "Observation", 1, Tier.STANDARD, patient_id="p2")


@pytest.fixture
def cipher() -> EnvelopeCipher:
    return EnvelopeCipher(LocalKeyring.generate(), MemoryScopeKeyStore())


@pytest.mark.parametrize("ref", [OBS, NOTE, ORG])
def test_round_trip_every_tier(cipher, ref):
    assert cipher.open(ref, cipher.seal(ref, b"payload")) == b"payload"


def test_fresh_data_key_and_nonce_per_record(cipher):
    one, two = cipher.seal(OBS, b"same"), cipher.seal(OBS, b"same")
    assert one.ciphertext != two.ciphertext
    assert one.wrapped_data_key != two.wrapped_data_key


@pytest.mark.parametrize(
    "moved",
    [
        replace(OBS, record_id="obs-9"),
        replace(OBS, resource_type="Condition"),
        replace(OBS, version=2),
        replace(OBS, patient_id="p2"),
        replace(OBS, tenant="other"),
    ],
)
def test_ciphertext_moved_to_another_row_does_not_open(cipher, moved):
    cipher.seal(moved, b"make the other scope exist")
    with pytest.raises(Undecryptable):
        cipher.open(moved, cipher.seal(OBS, b"payload"))


def test_moved_to_another_tier_does_not_open(cipher):
    sealed = cipher.seal(OBS, b"payload")
    with pytest.raises(Undecryptable):
        cipher.open(replace(OBS, tier=Tier.SENSITIVE), replace(sealed, scope_id=NOTE.scope_id()))


@pytest.mark.parametrize("field", ["ciphertext", "wrapped_data_key"])
@pytest.mark.parametrize("where", [0, 5, -1])
def test_tampered_does_not_open(cipher, field, where):
    sealed = cipher.seal(OBS, b"payload")
    blob = bytearray(getattr(sealed, field))
    blob[where] ^= 1
    with pytest.raises(Undecryptable) as caught:
        cipher.open(OBS, replace(sealed, **{field: bytes(blob)}))
    assert str(caught.value) == "the record cannot be decrypted"


def test_truncated_does_not_open(cipher):
    sealed = cipher.seal(OBS, b"payload")
    with pytest.raises(Undecryptable):
        cipher.open(OBS, replace(sealed, ciphertext=sealed.ciphertext[:10]))


def test_rotation_keeps_everything_readable_and_retires_the_old_version(cipher):
    refs = [OBS, NOTE, ORG, OTHER]
    sealed = {r: cipher.seal(r, r.record_id.encode()) for r in refs}
    steps = list(cipher.rotate())
    assert steps[0].done == 0 and steps[-1].done == steps[-1].total == 4
    status = cipher.status()
    assert status["current_version"] == 2
    assert status["versions"] == [2]
    assert status["scope_keys_by_version"] == {"2": 4}
    for ref in refs:
        assert cipher.open(ref, sealed[ref]) == ref.record_id.encode()
    # the data was not touched: the same ciphertexts still open after a second rotation
    list(cipher.rotate())
    assert cipher.open(OBS, sealed[OBS]) == b"obs-1"


def test_interrupted_rotation_keeps_the_old_version_until_nothing_uses_it(cipher):
    for ref in (OBS, OTHER, ORG):
        cipher.seal(ref, b"x")
    rotation = cipher.rotate()
    next(rotation), next(rotation)  # one of three rewrapped, then stopped
    assert cipher.status()["versions"] == [1, 2]
    assert cipher.retire_unused() == []
    list(cipher.rewrap())
    assert cipher.status()["versions"] == [2]


def test_shredded_patient_is_unreadable_and_others_are_not(cipher):
    obs, note, other = (cipher.seal(r, b"x") for r in (OBS, NOTE, OTHER))
    assert cipher.shred_patient("p1") == 2
    for ref, sealed in ((OBS, obs), (NOTE, note)):
        with pytest.raises(Undecryptable):
            cipher.open(ref, sealed)
    assert cipher.open(OTHER, other) == b"x"


def test_a_retired_version_no_longer_unwraps():
    ring = LocalKeyring.generate()
    wrapped = ring.wrap(b"k" * 32, b"ctx")
    ring.add_version()
    ring.retire(1)
    with pytest.raises(ValueError):
        ring.unwrap(wrapped, b"ctx")
    with pytest.raises(ConfigurationError):
        ring.retire(2)


def test_keyring_file_is_private_and_persists_rotation(tmp_path):
    path = tmp_path / "keyring.json"
    ring = LocalKeyring.open_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    wrapped = ring.wrap(b"k" * 32, b"ctx")
    ring.add_version()
    again = LocalKeyring.open_file(path)
    assert again.versions() == [1, 2] and again.current_version() == 2
    assert again.unwrap(wrapped, b"ctx") == b"k" * 32
    os.chmod(path, 0o640)
    with pytest.raises(ConfigurationError, match="readable by others"):
        LocalKeyring.open_file(path)


def test_damaged_keyring_file_is_one_clear_error(tmp_path):
    path = tmp_path / "keyring.json"
    read_or_create(path, lambda: b"not json")
    with pytest.raises(ConfigurationError, match="damaged"):
        LocalKeyring.open_file(path)


@pytest.mark.parametrize(
    ("purpose", "a", "b", "equal"),
    [
        ("mrn", "mrn-0042", " MRN 0042", True),
        ("mrn", "MRN0042", "MRN0043", False),
        ("ssn", "123-45-6789", "123 45 6789", True),
        ("name", "José O'Brien", "jose obrien", True),
        ("name", "Ann Lee", "Anne Lee", False),
    ],
)
def test_blind_index_table(purpose, a, b, equal):
    index = BlindIndex(bytes(range(32)))
    assert (index.value(purpose, a) == index.value(purpose, b)) is equal


def test_blind_index_depends_on_secret_and_purpose():
    one, two = BlindIndex(bytes(32)), BlindIndex(bytes([1]) * 32)
    assert one.value("mrn", "42") != two.value("mrn", "42")
    assert one.value("mrn", "42") != one.value("name", "42")
    with pytest.raises(InputFormatError):
        one.value("ssn", "12")
    with pytest.raises(InputFormatError):
        one.value("dob", "2000-01-01")


class RacingStore(MemoryScopeKeyStore):
    """Two writers that both looked before either wrote: ``get`` sees nothing."""

    blind = True

    def get(self, scope_id):
        return None if self.blind else super().get(scope_id)


def test_two_writers_creating_one_scope_key_agree_on_it():
    ring, store = LocalKeyring.generate(), RacingStore()
    first, second = EnvelopeCipher(ring, store), EnvelopeCipher(ring, store)
    sealed_first = first.seal(OBS, b"one")
    sealed_second = second.seal(replace(OBS, record_id="obs-2"), b"two")
    store.blind = False
    assert first.open(OBS, sealed_first) == b"one"
    assert first.open(replace(OBS, record_id="obs-2"), sealed_second) == b"two"
    assert len(store.all()) == 1


class _CountingStore(MemoryScopeKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, scope_id):
        self.gets += 1
        return super().get(scope_id)


def test_opening_reuses_an_unwrapped_scope_key_until_it_expires_or_the_patient_is_erased():
    now = [0.0]
    store = _CountingStore()
    cipher = EnvelopeCipher(LocalKeyring.generate(), store, open_cache_seconds=10, monotonic=lambda: now[0])
    refs = [RecordRef(f"o{i}", "Observation", 1, Tier.STANDARD, patient_id="p1") for i in range(3)]
    sealed = [cipher.seal(r, b"x") for r in refs]
    store.gets = 0
    assert [cipher.open(r, s) for r, s in zip(refs, sealed, strict=True)] == [b"x"] * 3
    assert store.gets == 1  # one lookup for the patient's key, then the cache
    now[0] = 11.0
    cipher.open(refs[0], sealed[0])
    assert store.gets == 2  # expired: read again
    cipher.shred_patient("p1")
    with pytest.raises(Undecryptable):
        cipher.open(refs[1], sealed[1])  # erased here: the cached key is dropped at once
