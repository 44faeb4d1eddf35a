"""The ``KeyService`` over HashiCorp Vault / OpenBao transit (``CUSTODES_KMS=vault-transit``).

The key-encryption keys stay in Vault: Custodes sends a scope key to
``transit/encrypt/<key>`` and keeps the ciphertext (``vault:v<N>:...``) as the wrapped
key, with N as its version. The semantics follow ``LocalKeyring``:

- **context**: with a *derived* transit key (the default when Custodes creates the key)
  the context goes in ``context`` and Vault derives a key per context (HKDF-SHA256), so
  a wrapped key presented with another context does not decrypt. With a non-derived
  AES-GCM key it goes in ``associated_data`` (Vault 1.14 and later).
- **versions**: ``add_version`` is ``keys/<key>/rotate``; ``current_version`` is the
  key's ``latest_version``; ``versions`` are those in the working set (from
  ``min_decryption_version`` up).
- **retire**: Vault retires versions from the oldest up, by raising
  ``min_decryption_version`` (and ``min_encryption_version`` to the latest), then
  ``keys/<key>/trim`` deletes the older versions for good. A version above one that is
  still live cannot retire on its own; it stays until the older ones go (the envelope's
  ``retire_unused`` asks oldest first, so they go together).
- **index secret**: the blind indexes need raw secret bytes, which a transit key never
  gives out. So the index secret is a 256-bit *data key* from ``transit/datakey``: its
  ciphertext (never the plaintext) is kept in a 0600 file in the data directory and
  decrypted once per process. ``add_version`` rewraps that ciphertext under the new
  version (``transit/rewrap``: the plaintext never leaves Vault), so retiring old
  versions never strands it. The secret itself never changes: a new one would make
  every stored index unsearchable.

The token is read from a file (``CUSTODES_VAULT_TOKEN_FILE``), kept only in the hvac
client, and never written into an error or a log line.

Tested against an emulation of the transit API on loopback, not against a real Vault
server (tests/unit/keys/transit_emulator.py says what it covers).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from custodes.core.errors import ConfigurationError, ServiceUnavailableError
from custodes.core.ports import WrappedKey
from custodes.keys.keyfile import check_private, read_or_create, replace_private

_VERSION = re.compile(rb"vault:v(\d+):")
INDEX_CONTEXT = b"custodes-blind-index-v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def read_token(path: Path) -> str:
    """The Vault token from its file (first line, whitespace stripped)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigurationError(f"cannot read the Vault token file {path}: {err.strerror}") from None
    if not token:
        raise ConfigurationError(f"the Vault token file {path} is empty")
    return token


class TransitKeyService:
    """Wraps and unwraps through a Vault transit key; see the module docstring."""

    def __init__(
        self,
        client: hvac.Client,
        key_name: str = "custodes",
        *,
        mount: str = "transit",
        index_file: Path | None = None,
        create: bool = True,
    ) -> None:
        self._client = client
        self._transit = client.secrets.transit
        self._name = key_name
        self._mount = mount
        self._index_file = index_file
        self._index_secret: bytes | None = None
        info = self._call(lambda: self._transit.read_key(key_name, mount_point=mount), missing_ok=create)
        if info is None:
            info = self._call(lambda: self._transit.create_key(
                key_name, derived=True, key_type="aes256-gcm96", mount_point=mount))  # fmt: skip
            if not isinstance(info, dict):  # Vault before 1.12 answers creation with 204
                info = self._call(lambda: self._transit.read_key(key_name, mount_point=mount))
        data = info["data"]
        if data.get("type") not in ("aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"):
            raise ConfigurationError(
                f"transit key {key_name} is of type {data.get('type')}; wrapping needs an AEAD key "
                "(aes256-gcm96)"
            )
        self._derived = bool(data.get("derived"))

    @classmethod
    def connect(
        cls,
        url: str,
        token_file: Path,
        key_name: str = "custodes",
        *,
        mount: str = "transit",
        ca_file: Path | None = None,
        index_file: Path | None = None,
        timeout: float = 10.0,
    ) -> TransitKeyService:
        client = hvac.Client(url=url, token=read_token(token_file),
                             verify=str(ca_file) if ca_file else True, timeout=timeout)  # fmt: skip
        return cls(client, key_name, mount=mount, index_file=index_file)

    def __repr__(self) -> str:  # never the client (it holds the token)
        return f"TransitKeyService(key={self._name!r}, mount={self._mount!r})"

    # --- KeyService ----------------------------------------------------------------------

    def current_version(self) -> int:
        return int(self._info()["latest_version"])

    def versions(self) -> list[int]:
        return sorted(int(v) for v in self._info()["keys"])

    def wrap(self, key: bytes, context: bytes) -> WrappedKey:
        answer = self._call(lambda: self._transit.encrypt_data(
            self._name, _b64(key), mount_point=self._mount, **self._bound(context)))  # fmt: skip
        ciphertext = answer["data"]["ciphertext"].encode()
        return WrappedKey(_version_of(ciphertext), ciphertext)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        try:
            if _version_of(wrapped.blob) != wrapped.version:
                raise ValueError("does not unwrap")
            answer = self._transit.decrypt_data(
                self._name, wrapped.blob.decode("ascii"), mount_point=self._mount,
                **self._bound(context),
            )  # fmt: skip
            return base64.b64decode(answer["data"]["plaintext"], validate=True)
        except (hvac.exceptions.InvalidRequest, ValueError, UnicodeDecodeError, KeyError):
            raise ValueError("does not unwrap") from None
        except (hvac.exceptions.VaultError, requests.RequestException) as err:
            raise self._unavailable(err) from None

    def add_version(self) -> int:
        self._call(lambda: self._transit.rotate_key(self._name, mount_point=self._mount))
        version = self.current_version()
        self._rewrap_index()
        return version

    def retire(self, version: int) -> None:
        info = self._info()
        current, lowest = int(info["latest_version"]), int(info["min_decryption_version"])
        if version == current:
            raise ConfigurationError("the current key version cannot be retired")
        if version < lowest:
            return  # retired already
        if version > lowest:
            return  # an older version is still live: Vault retires from the oldest up
        if self._index_file is not None and self._index_file.exists():
            self._rewrap_index()  # never strand the index secret under a retiring version
        newer = version + 1
        # Two calls: Vault wants min_encryption_version >= min_decryption_version at every
        # step (and hvac refuses the two equal in one call), so encryption moves first.
        self._call(lambda: self._transit.update_key_configuration(
            self._name, min_encryption_version=current, mount_point=self._mount))  # fmt: skip
        self._call(lambda: self._transit.update_key_configuration(
            self._name, min_decryption_version=newer, mount_point=self._mount))  # fmt: skip
        self._call(lambda: self._transit.trim_key(self._name, newer, mount_point=self._mount))

    def index_secret(self) -> bytes:
        """The blind-index root secret: a transit data key, its ciphertext in ``index_file``."""
        if self._index_secret is None:
            if self._index_file is None:
                raise ConfigurationError("the transit key service has no index file configured")

            def make() -> bytes:
                answer = self._call(lambda: self._transit.generate_data_key(
                    self._name, key_type="wrapped", bits=256, mount_point=self._mount,
                    **({"context": _b64(INDEX_CONTEXT)} if self._derived else {})))  # fmt: skip
                return answer["data"]["ciphertext"].encode()

            ciphertext = read_or_create(self._index_file, make).strip()
            try:
                self._index_secret = self.unwrap(WrappedKey(_version_of(ciphertext), ciphertext),
                                                 INDEX_CONTEXT)  # fmt: skip
            except ValueError:
                raise ConfigurationError(
                    f"the blind-index secret in {self._index_file.name} does not decrypt with "
                    f"transit key {self._name}"
                ) from None
        return self._index_secret

    # --- helpers -------------------------------------------------------------------------

    def _bound(self, context: bytes) -> dict[str, str]:
        return {"context": _b64(context)} if self._derived else {"associated_data": _b64(context)}

    def _info(self) -> dict[str, Any]:
        return self._call(lambda: self._transit.read_key(self._name, mount_point=self._mount))["data"]

    def _rewrap_index(self) -> None:
        if self._index_file is None or not self._index_file.exists():
            return
        check_private(self._index_file)
        ciphertext = self._index_file.read_bytes().strip().decode("ascii")
        answer = self._call(lambda: self._transit.rewrap_data(
            self._name, ciphertext, mount_point=self._mount,
            **({"context": _b64(INDEX_CONTEXT)} if self._derived else {})))  # fmt: skip
        replace_private(self._index_file, answer["data"]["ciphertext"].encode())

    def _call(self, request: Callable[[], Any], *, missing_ok: bool = False) -> Any:
        try:
            return request()
        except hvac.exceptions.InvalidPath:
            if missing_ok:
                return None
            raise ConfigurationError(
                f"transit key {self._name} (mount {self._mount}) does not exist in Vault"
            ) from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            raise ConfigurationError(
                f"Vault refused the token for transit key {self._name} (permission denied)"
            ) from None
        except hvac.exceptions.InvalidRequest as err:
            raise ConfigurationError(f"Vault transit refused the request: {_first(err)}") from None
        except (hvac.exceptions.VaultError, requests.RequestException) as err:
            raise self._unavailable(err) from None

    def _unavailable(self, err: Exception) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            f"Vault transit is unavailable ({type(err).__name__}); nothing was wrapped or unwrapped"
        )


def _first(err: hvac.exceptions.VaultError) -> str:
    errors = getattr(err, "errors", None)
    if isinstance(errors, list) and errors:
        return str(errors[0])
    return type(err).__name__


def _version_of(ciphertext: bytes) -> int:
    found = _VERSION.match(ciphertext)
    if not found:
        raise ValueError("not a Vault transit ciphertext")
    return int(found.group(1))
