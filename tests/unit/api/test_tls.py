"""`custodes serve` transport: the plain-HTTP decision, the development certificate,
HSTS and Secure cookies under TLS, and the CLI's one-line refusal."""

from __future__ import annotations

import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from custodes.api.app import create_app
from custodes.api.tls import (
    CERT_FILE,
    HSTS,
    KEY_FILE,
    Transport,
    plan_transport,
    self_signed_pair,
)
from custodes.bootstrap import Custodes, Settings
from custodes.core.errors import ConfigurationError

CHEAP = {"argon2_memory_kib": 8, "argon2_time_cost": 1, "argon2_parallelism": 1}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_plain_http_on_loopback(host):
    assert plan_transport(host) == Transport()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "custodes.example.org"])
def test_plain_http_beyond_loopback_is_refused(host):
    with pytest.raises(ConfigurationError, match=f"refusing plain HTTP on {host}: passwords"):
        plan_transport(host)
    assert plan_transport(host, allow_plain_http=True) == Transport()
    assert plan_transport(host, self_signed=True).self_signed


def test_given_pair(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    os.chmod(key, 0o600)
    transport = plan_transport("0.0.0.0", tls_cert=cert, tls_key=key)
    assert (transport.tls, transport.scheme) == (True, "https")
    os.chmod(key, 0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        plan_transport("0.0.0.0", tls_cert=cert, tls_key=key)
    with pytest.raises(ConfigurationError, match="go together"):
        plan_transport("0.0.0.0", tls_cert=cert)
    with pytest.raises(ConfigurationError, match="not both"):
        plan_transport("0.0.0.0", tls_cert=cert, tls_key=key, self_signed=True)
    with pytest.raises(ConfigurationError, match="does not exist"):
        plan_transport("0.0.0.0", tls_cert=tmp_path / "nope", tls_key=key)


def _cert(transport: Transport) -> x509.Certificate:
    return x509.load_pem_x509_certificate(transport.cert_file.read_bytes())


def test_self_signed_pair_is_made_private_and_reused(tmp_path):
    made = self_signed_pair(tmp_path, "192.0.2.7", now=NOW)
    assert (made.cert_file.name, made.key_file.name) == (CERT_FILE, KEY_FILE)
    assert stat.S_IMODE(made.key_file.stat().st_mode) == 0o600
    cert = _cert(made)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "::1", "192.0.2.7"}
    assert cert.not_valid_after_utc - NOW > timedelta(days=360)
    key_bytes = made.key_file.read_bytes()

    again = self_signed_pair(tmp_path, "127.0.0.1", now=NOW + timedelta(days=100))
    assert again.key_file.read_bytes() == key_bytes  # reused: covers the host, still valid
    assert self_signed_pair(tmp_path, "192.0.2.7", now=NOW).key_file.read_bytes() == key_bytes


def test_self_signed_pair_is_made_again_when_unfit(tmp_path):
    first = self_signed_pair(tmp_path, "127.0.0.1", now=NOW).key_file.read_bytes()
    other_host = self_signed_pair(tmp_path, "custodes.test", now=NOW)
    assert other_host.key_file.read_bytes() != first
    san = _cert(other_host).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "custodes.test" in san.get_values_for_type(x509.DNSName)
    second = other_host.key_file.read_bytes()
    near_end = self_signed_pair(tmp_path, "custodes.test", now=NOW + timedelta(days=340))
    assert near_end.key_file.read_bytes() != second
    (tmp_path / CERT_FILE).write_text("not a certificate")
    assert _cert(self_signed_pair(tmp_path, "localhost", now=NOW))
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        self_signed_pair(tmp_path, "localhost", now=NOW)


def test_unspecified_address_is_not_a_name(tmp_path):
    san = _cert(self_signed_pair(tmp_path, "0.0.0.0", now=NOW)).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("0.0.0.0") not in san.get_values_for_type(x509.IPAddress)


@pytest.mark.parametrize("tls", [True, False])
def test_hsts_and_secure_cookie_under_tls(tmp_path, tls):
    custodes = Custodes(Settings(data_dir=tmp_path, cookie_secure=False, **CHEAP))
    client = TestClient(create_app(custodes, tls=tls), base_url="https://testserver")
    response = client.post("/auth/login", json={"username": "x", "password": "y" * 12})
    assert response.status_code == 401
    assert response.headers.get("strict-transport-security") == (HSTS if tls else None)
    assert HSTS == "max-age=63072000; includeSubDomains"
    app = client.app
    assert app.state.cookie_secure is tls
    assert app.state.session_cookie == ("__Host-custodes_session" if tls else "custodes_session")


def test_cli_refuses_plain_http_beyond_loopback(tmp_path, monkeypatch):
    from custodes.cli.main import app

    monkeypatch.setenv("CUSTODES_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8443"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith("error: refusing plain HTTP on 0.0.0.0: passwords")
    assert "--allow-plain-http" in result.output
    assert not (tmp_path / "data").exists()  # refused before anything was created
