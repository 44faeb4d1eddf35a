"""The passkey ceremonies in real Chromium, with a virtual authenticator.

Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``), driven by
Playwright's Python package over the DevTools protocol, against a real Uvicorn server
on localhost (a secure context, so WebAuthn works over plain HTTP there). The virtual
authenticator is a platform authenticator with resident keys and user verification:
what Touch ID or Windows Hello would be, minus the finger.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
import uvicorn

from custodes.api.app import create_app
from custodes.bootstrap import Custodes, Settings

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    """A real Uvicorn server on localhost, with one account that has TOTP."""
    port = _free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=None,
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
        webauthn_origins=(f"http://localhost:{port}",),
    )
    custodes = Custodes(settings)
    custodes.identity.add_user("alice", "clinician", PASSWORD)
    secret = custodes.identity.enroll_totp("alice").secret
    uv = uvicorn.Server(
        uvicorn.Config(
            create_app(custodes), host="127.0.0.1", port=port, log_level="warning", ws="none"
        )
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if uv.started:
            break
        time.sleep(0.05)
    yield f"http://localhost:{port}", custodes, secret
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_page(tmp_path: Path):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                }
            },
        )["authenticatorId"]
        yield page, cdp, authenticator
        context.close()


def test_passkey_registration_login_and_step_up(server, browser_page, caplog):
    base, custodes, secret = server
    page, cdp, authenticator = browser_page
    page.goto(f"{base}/auth/passkeys")
    call = page.evaluate

    login = call(
        "([u, p, t]) => custodes.login(u, p, t)", ["alice", PASSWORD, pyotp.TOTP(secret).now()]
    )
    assert login["token_type"] == "bearer"
    assert call("() => custodes.register()") == {"registered": True}
    [stored] = custodes.identity.store.passkeys_of("alice")
    assert stored.public_key  # only the public key is kept
    call("() => custodes.logout()")
    assert call("() => custodes.session()") == {"detail": "sign in first"}

    # Sign in with the passkey alone: a discoverable credential, user verified on the device.
    signed_in = call("() => custodes.passkeyLogin()")
    assert signed_in["token_type"] == "bearer"
    session = call("() => custodes.session()")
    assert session["user"] == "alice" and session["mfa_method"] == "webauthn"
    assert "sensitive_tier" in session["step_up_fresh"]
    assert call("() => custodes.stepUpAllowed('sensitive_tier')") == 200

    # Step-up that requires user verification succeeds while the device verifies...
    assert call("() => custodes.stepUp()")["token_type"] == "bearer"
    # ...and fails when it cannot.
    cdp.send(
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False}
    )
    with pytest.raises(Exception, match="NotAllowedError|not accepted|did not verify"):
        call("() => custodes.stepUp()")
    # A passkey alone signs in only with user verification: it must stay two factors.
    call("() => custodes.logout()")
    with pytest.raises(Exception, match="NotAllowedError|not accepted"):
        call("() => custodes.passkeyLogin()")
    assert call("() => custodes.session()") == {"detail": "sign in first"}
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": True})

    # A sign counter that goes backwards is a warning, not a refusal (synced passkeys).
    [stored] = custodes.identity.store.passkeys_of("alice")
    custodes.identity.store.update_passkey_use(stored.credential_id, 10_000, stored.created_at)
    with caplog.at_level(logging.WARNING, logger="custodes.identity.passkeys"):
        assert call("() => custodes.passkeyLogin()")["token_type"] == "bearer"
    assert "sign counter of alice did not advance" in caplog.text

    with custodes.engine.connect() as connection:
        methods = connection.execute(
            sa.text("SELECT kind, outcome, mfa_method FROM signin_events ORDER BY time")
        ).fetchall()
    assert ("login", "success", "webauthn-uv") in methods
    assert ("step_up", "success", "webauthn-uv") in methods
