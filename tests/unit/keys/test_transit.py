"""The Vault transit ``KeyService`` through hvac, against the loopback emulation of the
transit API in ``transit_emulator.py`` (there is no Vault server here)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import hvac
import pytest
from tests.unit.keys.transit_emulator import TransitEmulator

from custodes.core.errors import ConfigurationError, ServiceUnavailableError
from custodes.core.ports import WrappedKey
from custodes.keys.envelope import EnvelopeCipher, MemoryScopeKeyStore, RecordRef, Tier
from custodes.keys.errors import Undecryptable
from custodes.keys.transit import TransitKeyService

TOKEN = "hvs.test-token-not-a-secret"
KEY = b"k" * 32


@pytest.fixture
def vault():
    with TransitEmulator(TOKEN) as emulator:
        yield emulator


def service(vault, tmp_path: Path, token: str = TOKEN, **kwargs) -> TransitKeyService:
    token_file = tmp_path / "vault-token"
    token_file.write_text(token + "\n")
    return TransitKeyService.connect(vault.url, token_file, index_file=tmp_path / "index.transit",
                                     **kwargs)


def test_creates_a_derived_key_and_wraps_with_context(vault, tmp_path):
    keys = service(vault, tmp_path)
    assert vault.keys["custodes"].derived
    wrapped = keys.wrap(KEY, b"scope:a")
    assert wrapped.version == 1 and wrapped.blob.startswith(b"vault:v1:")
    assert keys.unwrap(wrapped, b"scope:a") == KEY
    with pytest.raises(ValueError, match="^does not unwrap$"):
        keys.unwrap(wrapped, b"scope:b")  # another context derives another key
    with pytest.raises(ValueError, match="^does not unwrap$"):
        keys.unwrap(WrappedKey(2, wrapped.blob), b"scope:a")  # the version is part of it
    tampered = wrapped.blob[:-4] + (b"AAAA" if not wrapped.blob.endswith(b"AAAA") else b"BBBB")
    with pytest.raises(ValueError, match="^does not unwrap$"):
        keys.unwrap(WrappedKey(1, tampered), b"scope:a")
    encrypts = [body for method, path, body in vault.requests if "/encrypt/" in path]
    assert encrypts[0]["context"] == base64.b64encode(b"scope:a").decode()
    assert "associated_data" not in encrypts[0]


def test_a_non_derived_key_binds_the_context_as_associated_data(vault, tmp_path):
    hvac.Client(vault.url, token=TOKEN).secrets.transit.create_key("plain")
    keys = service(vault, tmp_path, key_name="plain")
    wrapped = keys.wrap(KEY, b"ctx")
    assert keys.unwrap(wrapped, b"ctx") == KEY
    with pytest.raises(ValueError):
        keys.unwrap(wrapped, b"other")
    body = next(body for _, path, body in vault.requests if "/encrypt/plain" in path)
    assert body["associated_data"] == base64.b64encode(b"ctx").decode() and "context" not in body


def test_versions_rotate_and_retire(vault, tmp_path):
    keys = service(vault, tmp_path)
    old = keys.wrap(KEY, b"c")
    assert (keys.current_version(), keys.versions()) == (1, [1])
    assert keys.add_version() == 2 and keys.add_version() == 3
    assert keys.versions() == [1, 2, 3]
    assert keys.wrap(KEY, b"c").version == 3
    assert keys.unwrap(old, b"c") == KEY  # older versions still unwrap until retired
    with pytest.raises(ConfigurationError, match="current key version cannot be retired"):
        keys.retire(3)
    keys.retire(2)  # version 1 is still live: Vault retires from the oldest up
    assert keys.versions() == [1, 2, 3]
    keys.retire(1)
    keys.retire(2)
    assert keys.versions() == [3]
    transit = vault.keys["custodes"]
    assert (transit.min_decryption_version, transit.min_available_version) == (3, 3)
    assert set(transit.keys) == {3}  # trimmed: the old versions are gone for good
    with pytest.raises(ValueError, match="^does not unwrap$"):
        keys.unwrap(old, b"c")
    keys.retire(1)  # retiring again does nothing


def test_envelope_over_transit_rotates_and_retires(vault, tmp_path):
    cipher = EnvelopeCipher(service(vault, tmp_path), MemoryScopeKeyStore())
    refs = [RecordRef(f"o{i}", "Observation", 1, Tier.STANDARD, patient_id=f"p{i % 3}")
            for i in range(6)]
    sealed = [cipher.seal(ref, f"record {ref.record_id}".encode()) for ref in refs]
    assert list(cipher.rotate())[-1].total == 3  # three patients' scope keys rewrapped
    status = cipher.status()
    assert status["current_version"] == 2 and status["versions"] == [2]
    assert status["scope_keys_by_version"] == {"2": 3}
    for ref, record in zip(refs, sealed, strict=True):
        assert cipher.open(ref, record) == f"record {ref.record_id}".encode()
    assert cipher.shred_patient("p0") == 1
    with pytest.raises(Undecryptable):
        cipher.open(refs[0], sealed[0])


def test_index_secret_is_a_data_key_that_survives_rotation(vault, tmp_path):
    keys = service(vault, tmp_path)
    secret = keys.index_secret()
    assert len(secret) == 32
    index_file = tmp_path / "index.transit"
    assert stat.S_IMODE(index_file.stat().st_mode) == 0o600
    stored = index_file.read_bytes()
    assert stored.startswith(b"vault:v1:") and base64.b64encode(secret) not in stored
    keys.add_version()
    assert index_file.read_bytes().startswith(b"vault:v2:")  # rewrapped inside Vault
    keys.retire(1)
    again = service(vault, tmp_path)  # a new process: decrypts the stored ciphertext
    assert again.index_secret() == secret
    assert not any("/datakey/plaintext/" in path for _, path, _ in vault.requests)


def test_a_wrong_token_is_one_clear_error_without_the_token(vault, tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        service(vault, tmp_path, token="hvs.wrong-token")
    assert "permission denied" in str(refused.value)
    assert "wrong-token" not in str(refused.value) and TOKEN not in repr(service(vault, tmp_path))


def test_vault_down_is_unavailable_not_undecryptable(vault, tmp_path):
    keys = service(vault, tmp_path)
    wrapped = keys.wrap(KEY, b"c")
    vault.__exit__(None, None, None)
    with pytest.raises(ServiceUnavailableError, match="Vault transit is unavailable"):
        keys.unwrap(wrapped, b"c")


def test_token_file_problems(tmp_path):
    empty = tmp_path / "token"
    empty.write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        TransitKeyService.connect("http://127.0.0.1:1", empty)
    with pytest.raises(ConfigurationError, match="cannot read the Vault token file"):
        TransitKeyService.connect("http://127.0.0.1:1", tmp_path / "absent")


def test_wired_from_the_environment(vault, tmp_path, monkeypatch):
    from custodes.bootstrap import Custodes, Settings

    token_file = tmp_path / "vault-token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("CUSTODES_KMS", "vault-transit")
    monkeypatch.setenv("CUSTODES_VAULT_ADDR", vault.url)
    monkeypatch.setenv("CUSTODES_VAULT_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("CUSTODES_VAULT_KEY", "custodes-test")
    settings = Settings(data_dir=tmp_path / "data")
    assert TOKEN not in repr(settings)
    app = Custodes(settings)
    assert isinstance(app.key_service, TransitKeyService)
    ref = RecordRef("o1", "Observation", 1, Tier.SENSITIVE, patient_id="p1")
    assert app.envelope.open(ref, app.envelope.seal(ref, b"x")) == b"x"
    assert "custodes-test" in vault.keys
    assert app.key_service.index_secret() and (tmp_path / "data" / "blind-index.transit").exists()
    monkeypatch.setenv("CUSTODES_KMS", "local")
    assert not isinstance(Custodes(Settings(data_dir=tmp_path / "d2")).key_service,
                          TransitKeyService)


def test_transit_without_its_settings_is_one_clear_error(tmp_path):
    from custodes.bootstrap import Custodes, Settings

    app = Custodes(Settings(data_dir=tmp_path, kms="vault-transit"))
    with pytest.raises(ConfigurationError, match="needs CUSTODES_VAULT_ADDR and CUSTODES_VAULT_TOKEN_FILE"):
        _ = app.key_service
