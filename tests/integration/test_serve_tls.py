"""``custodes serve --self-signed``: the real Uvicorn server answering HTTPS on loopback."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.integration.test_cli_users import _env, _free_port

from custodes.api.tls import CERT_FILE, HSTS


def test_https_with_the_development_certificate(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "custodes", "serve", "--self-signed", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cert = tmp_path / CERT_FILE
        for _ in range(400):
            if cert.exists():
                break
            time.sleep(0.05)
        trust = ssl.create_default_context(cafile=str(cert))
        base = f"https://localhost:{port}"
        for _ in range(400):
            try:
                response = httpx.get(base + "/auth/passkeys", verify=trust, timeout=1.0)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    pytest.fail(server.stderr.read())
                time.sleep(0.05)
        else:
            pytest.fail("the server did not answer")
        assert response.status_code == 200
        assert response.headers["strict-transport-security"] == HSTS
        login = httpx.post(base + "/auth/login", verify=trust,
                           json={"username": "nobody", "password": "x" * 12, "totp": "1"})
        assert login.status_code == 401 and login.headers["strict-transport-security"] == HSTS
        # Untrusted by default: the development certificate is trusted only when told to.
        with pytest.raises(httpx.ConnectError):
            httpx.get(base + "/auth/passkeys", timeout=2.0)
        # By IP address too (the certificate names 127.0.0.1).
        assert httpx.get(f"https://127.0.0.1:{port}/auth/passkeys", verify=trust).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
