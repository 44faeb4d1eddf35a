"""A small emulation of the Vault / OpenBao transit secrets engine, on loopback.

There is no Vault server on the test machine, so the adapter is tested against this:
the endpoints Custodes uses, written from Vault's transit API documentation
(developer.hashicorp.com/vault/api-docs/secret/transit): create, read, rotate, config
and trim a key; encrypt, decrypt and rewrap; wrapped data keys. Ciphertexts have
Vault's shape (``vault:v<N>:`` + base64 of nonce || AES-256-GCM output), derived keys
come from HKDF-SHA256 with the context (as Vault derives them), non-derived keys take
``associated_data``; the key ring keeps versions from ``min_decryption_version`` in
its working set, and errors are Vault's status codes with ``{"errors": [...]}``.

It is an emulation, not Vault: no policies beyond one token, no storage, no
convergent encryption, batch input or other key types.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which "
    "means additional, per-request information must be included in order to perform "
    "operations with the key"
)


class VaultError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class TransitKey:
    name: str
    derived: bool
    keys: dict[int, bytes] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)
    latest_version: int = 0
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0

    def rotate(self) -> None:
        self.latest_version += 1
        self.keys[self.latest_version] = os.urandom(32)
        self.created[self.latest_version] = int(time.time())

    def info(self) -> dict:
        return {
            "name": self.name,
            "type": "aes256-gcm96",
            "derived": self.derived,
            "kdf": "hkdf_sha256" if self.derived else None,
            "deletion_allowed": False,
            "exportable": False,
            "allow_plaintext_backup": False,
            # the working set: versions from min_decryption_version up (older ones archived)
            "keys": {str(v): t for v, t in self.created.items() if v >= self.min_decryption_version},
            "latest_version": self.latest_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "min_available_version": self.min_available_version,
            "supports_encryption": True,
            "supports_decryption": True,
            "supports_derivation": True,
            "supports_signing": False,
            "imported": False,
            "auto_rotate_period": 0,
        }

    def _aead(self, version: int, body: dict) -> tuple[AESGCM, bytes | None]:
        key = self.keys.get(version)
        if key is None:
            raise VaultError(400, "invalid key version")
        if self.derived:
            context = body.get("context")
            if not context:
                raise VaultError(400, MISSING_CONTEXT)
            key = HKDF(hashes.SHA256(), 32, salt=None, info=_b64(context)).derive(key)
            return AESGCM(key), None
        aad = body.get("associated_data")
        return AESGCM(key), _b64(aad) if aad else None

    def encrypt(self, plaintext: bytes, body: dict) -> str:
        version = int(body.get("key_version") or self.latest_version)
        if version < max(self.min_encryption_version, 1) or version > self.latest_version:
            raise VaultError(400, "requested version for encryption is not valid")
        aead, aad = self._aead(version, body)
        nonce = os.urandom(12)
        sealed = nonce + aead.encrypt(nonce, plaintext, aad)
        return f"vault:v{version}:" + base64.b64encode(sealed).decode()

    def decrypt(self, ciphertext: str, body: dict) -> bytes:
        found = re.fullmatch(r"vault:v(\d+):(.*)", ciphertext or "", re.S)
        if not found:
            raise VaultError(400, "invalid ciphertext: no prefix")
        version = int(found.group(1))
        if version < self.min_decryption_version:
            raise VaultError(400, "ciphertext or signature version is disallowed by policy (too old)")
        if version > self.latest_version:
            raise VaultError(400, "invalid ciphertext: version is too new")
        try:
            sealed = base64.b64decode(found.group(2), validate=True)
        except ValueError:
            raise VaultError(400, "invalid ciphertext: could not decode base64") from None
        aead, aad = self._aead(version, body)
        try:
            return aead.decrypt(sealed[:12], sealed[12:], aad)
        except (InvalidTag, ValueError):
            raise VaultError(400, "cipher: message authentication failed") from None

    def configure(self, body: dict) -> None:
        min_decryption = int(body.get("min_decryption_version", self.min_decryption_version))
        min_encryption = int(body.get("min_encryption_version", self.min_encryption_version))
        if min_decryption < 1:
            min_decryption = 1
        if min_decryption > self.latest_version:
            raise VaultError(400, "cannot set min decryption version to be greater than the latest version")
        if min_decryption < self.min_available_version:
            raise VaultError(400, "min decryption version should not be less then min available version")
        if min_encryption > self.latest_version:
            raise VaultError(400, "cannot set min encryption version to be greater than the latest version")
        if min_encryption and min_encryption < min_decryption:
            raise VaultError(400, "min encryption version should not be less than min decryption version")
        self.min_decryption_version, self.min_encryption_version = min_decryption, min_encryption

    def trim(self, body: dict) -> None:
        wanted = int(body.get("min_available_version") or 0)
        if wanted <= 0:
            raise VaultError(400, "minimum available version should be positive")
        if self.min_encryption_version == 0:
            raise VaultError(400, "minimum decryption and encryption versions must be set before trimming")
        if wanted > min(self.min_decryption_version, self.min_encryption_version):
            raise VaultError(400, "minimum available version cannot be greater than minimum encryption and decryption versions")
        if wanted < self.min_available_version:
            raise VaultError(400, "minimum available version cannot be decremented")
        for version in [v for v in self.keys if v < wanted]:
            del self.keys[version], self.created[version]  # gone for good
        self.min_available_version = wanted


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise VaultError(400, "failed to base64-decode") from None


class TransitEmulator:
    """``with TransitEmulator(token) as vault:`` serves on ``vault.url`` until the block ends."""

    def __init__(self, token: str, mount: str = "transit") -> None:
        self.token = token
        self.mount = mount
        self.keys: dict[str, TransitKey] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, body) as received
        self._lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                emulator.requests.append((method, self.path, body))
                if self.headers.get("X-Vault-Token") != emulator.token:
                    return self._reply(403, {"errors": ["permission denied"]})
                try:
                    with emulator._lock:
                        status, data = emulator.handle(method, self.path, body)
                except VaultError as err:
                    return self._reply(err.status, {"errors": [str(err)]})
                self._reply(status, None if status == 204 else {"data": data})

            def _reply(self, status: int, doc: dict | None) -> None:
                payload = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TransitEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _key(self, name: str) -> TransitKey:
        key = self.keys.get(name)
        if key is None:
            raise VaultError(404, "encryption key not found" if name else "missing key name")
        return key

    def handle(self, method: str, path: str, body: dict) -> tuple[int, dict | None]:
        prefix = f"/v1/{self.mount}/"
        if not path.startswith(prefix):
            raise VaultError(404, f"no handler for route '{path.lstrip('/v1/')}'")
        parts = path[len(prefix):].split("/")
        match (method, *parts):
            case ("POST", "keys", name):
                if name not in self.keys:
                    key = TransitKey(name, derived=bool(body.get("derived")))
                    key.rotate()
                    self.keys[name] = key
                return 200, self.keys[name].info()
            case ("GET", "keys", name):
                key = self.keys.get(name)
                if key is None:
                    raise VaultError(404, "")  # Vault answers a missing key with an empty 404
                return 200, key.info()
            case ("POST", "keys", name, "rotate"):
                key = self._key(name)
                key.rotate()
                return 200, key.info()
            case ("POST", "keys", name, "config"):
                key = self._key(name)
                key.configure(body)
                return 200, key.info()
            case ("POST", "keys", name, "trim"):
                key = self._key(name)
                key.trim(body)
                return 200, key.info()
            case ("POST", "encrypt", name):
                key = self._key(name)
                ciphertext = key.encrypt(_b64(body.get("plaintext", "")), body)
                return 200, {"ciphertext": ciphertext, "key_version": int(ciphertext.split(":")[1][1:])}
            case ("POST", "decrypt", name):
                plaintext = self._key(name).decrypt(body.get("ciphertext", ""), body)
                return 200, {"plaintext": base64.b64encode(plaintext).decode()}
            case ("POST", "rewrap", name):
                key = self._key(name)
                plaintext = key.decrypt(body.get("ciphertext", ""), body)
                ciphertext = key.encrypt(plaintext, {**body, "key_version": body.get("key_version")})
                return 200, {"ciphertext": ciphertext, "key_version": int(ciphertext.split(":")[1][1:])}
            case ("POST", "datakey", ("plaintext" | "wrapped") as kind, name):
                key = self._key(name)
                bits = int(body.get("bits") or 256)
                if bits not in (128, 256, 512):
                    raise VaultError(400, "invalid bit length")
                plaintext = os.urandom(bits // 8)
                ciphertext = key.encrypt(plaintext, body)
                data = {"ciphertext": ciphertext, "key_version": int(ciphertext.split(":")[1][1:])}
                if kind == "plaintext":
                    data["plaintext"] = base64.b64encode(plaintext).decode()
                return 200, data
        raise VaultError(405, "unsupported operation")
