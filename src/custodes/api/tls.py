"""How ``custodes serve`` listens: TLS with a given or a development certificate, or plain HTTP.

``plan_transport`` is the decision, pure: TLS when a certificate pair is given or
``--self-signed`` asks for one; plain HTTP only on a loopback address, or when the
operator says ``--allow-plain-http`` (a TLS-terminating proxy in front). Passwords,
TOTP codes and session cookies must not cross a network in clear text.

``self_signed_pair`` makes (or reuses) a development certificate in the data directory:
ECDSA P-256, valid a year, for ``localhost``, ``127.0.0.1``, ``::1`` and the host served;
the key is written 0600 through ``keys/keyfile.py``. Browsers and clients do not trust
it unless told to; it is for development, never for production.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custodes.core.errors import ConfigurationError
from custodes.keys.keyfile import check_private, replace_private

HSTS = "max-age=63072000; includeSubDomains"  # two years, the preload list's minimum
CERT_FILE = "dev-tls-cert.pem"
KEY_FILE = "dev-tls-key.pem"
VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)  # a pair closer than this to its end is made again


@dataclass(frozen=True, slots=True)
class Transport:
    """What the server listens with: a certificate pair, or none (plain HTTP)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    self_signed: bool = False

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; anything else may reach other machines.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.5")]
    [True, True, True, False, False]
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def plan_transport(
    host: str,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    self_signed: bool = False,
    allow_plain_http: bool = False,
) -> Transport:
    """Decide how to listen; a ``ConfigurationError`` (one line) when it would be unsafe."""
    if self_signed and (tls_cert or tls_key):
        raise ConfigurationError("give either --tls-cert/--tls-key or --self-signed, not both")
    if (tls_cert is None) != (tls_key is None):
        raise ConfigurationError("--tls-cert and --tls-key go together: give both")
    if tls_cert is not None and tls_key is not None:
        for path in (tls_cert, tls_key):
            if not path.is_file():
                raise ConfigurationError(f"TLS file {path} does not exist")
        check_private(tls_key)
        return Transport(tls_cert, tls_key)
    if self_signed:
        return Transport(self_signed=True)  # the pair is made in the data directory
    if not is_loopback(host) and not allow_plain_http:
        raise ConfigurationError(
            f"refusing plain HTTP on {host}: passwords, one-time codes and session cookies "
            "would cross the network unencrypted; give --tls-cert and --tls-key (or "
            "--self-signed for development), or --allow-plain-http if a TLS proxy is in front"
        )
    return Transport()


def self_signed_pair(folder: Path, host: str, *, now: datetime | None = None) -> Transport:
    """The development pair in ``folder``: reused while valid for ``host``, else made anew."""
    now = now or datetime.now(UTC)
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if _reusable(cert_path, key_path, host, now):
        return Transport(cert_path, key_path, self_signed=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Custodes development")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    replace_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    replace_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Transport(cert_path, key_path, self_signed=True)


def _names(host: str) -> list[x509.GeneralName]:
    dns = {"localhost"}
    addresses = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        dns.add(host.lower())
    else:
        if not address.is_unspecified:  # 0.0.0.0 names no address a client would use
            addresses.add(address)
    return [*(x509.DNSName(d) for d in sorted(dns)),
            *(x509.IPAddress(a) for a in sorted(addresses, key=str))]  # fmt: skip


def _reusable(cert_path: Path, key_path: Path, host: str, now: datetime) -> bool:
    """The pair exists, the key is private and belongs to the certificate, which covers
    ``host`` and is not about to end."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    check_private(key_path)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return False
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc - RENEW_BEFORE:
        return False
    wanted = set(_names(host))
    return wanted <= set(san)
