"""The HTTP edge: POST /auth/login, sessions by cookie or bearer token, step-up, errors."""

from __future__ import annotations

import pytest

from custodes.api.deps import SESSION_COOKIE

from .conftest import PASSWORD, FrontDoor, app_client


@pytest.fixture
def client(tmp_path, door):
    door.person()
    with app_client(tmp_path, door) as client:
        yield client


def _login(client, door: FrontDoor, **changes):
    body = {"username": "alice", "password": PASSWORD, "totp": door.code()} | changes
    return client.post("/auth/login", json=body)


def test_login_answers_token_and_cookie(client, door):
    response = _login(client, door)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 12 * 3600
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}={body['access_token']}" in cookie
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "changes",
    [
        {"username": "nobody"},
        {"password": "wrong password entirely"},
        {"totp": None},
        {"totp": "000000"},
        {"username": ""},
    ],
)
def test_every_failure_is_the_same_401(client, door, changes):
    response = _login(client, door, **changes)
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid credentials"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_bearer_token_and_cookie_both_reach_the_session(client, door):
    token = _login(client, door).json()["access_token"]
    by_cookie = client.get("/auth/session")
    client.cookies.clear()
    by_bearer = client.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert by_cookie.json()["user"] == by_bearer.json()["user"] == "alice"
    assert by_cookie.json()["role"] == "nurse"


def test_no_session_is_401_with_one_line(client):
    response = client.get("/auth/session")
    assert response.status_code == 401 and response.json() == {"detail": "sign in first"}


def test_login_rotates_a_presented_session(client, door):
    first = _login(client, door).json()["access_token"]
    door.next_step()
    second = _login(client, door).json()["access_token"]
    assert first != second
    client.cookies.clear()
    stale = client.get("/auth/session", headers={"Authorization": f"Bearer {first}"})
    assert stale.status_code == 401


def test_step_up_route(client, door):
    _login(client, door)
    door.clock.advance(minutes=11)
    assert client.get("/auth/step-up/export").status_code == 403
    assert "second factor" in client.get("/auth/step-up/export").json()["detail"]
    door.next_step()
    stepped = client.post("/auth/step-up", json={"totp": door.code()})
    assert stepped.status_code == 200
    assert client.get("/auth/step-up/export").json() == {"operation": "export", "allowed": True}
    assert client.get("/auth/step-up/sensitive_tier").status_code == 403


def test_logout(client, door):
    _login(client, door)
    assert client.post("/auth/logout").status_code == 200
    assert client.get("/auth/session").status_code == 401


def test_malformed_bodies_get_one_line(client):
    response = client.post(
        "/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "\n" not in response.json()["detail"]
    response = client.post("/auth/login", json={"username": "alice"})
    assert response.status_code == 422 and "password" in response.json()["detail"]


def test_unexpected_errors_do_not_leak(client, door, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(door.service, "login", boom)
    from fastapi.testclient import TestClient

    quiet = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    response = quiet.post("/auth/login", json={"username": "a", "password": "b"})
    assert response.status_code == 500 and response.json() == {"detail": "internal error"}


def test_api_token_reaches_the_session_route(client, door):
    from datetime import timedelta

    from custodes.core.accounts import AccountKind

    door.service.add_user("etl", "him", kind=AccountKind.SERVICE)
    token = door.service.issue_token("etl", ("events:write",), timedelta(days=1))
    response = client.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["kind"] == "token" and response.json()["scopes"] == ["events:write"]
    # Routes that need a person's session refuse tokens.
    assert (
        client.post(
            "/auth/step-up", json={"totp": "1"}, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_passkey_page_is_served_without_external_assets(client):
    page = client.get("/auth/passkeys")
    assert page.status_code == 200 and '<script src="/auth/passkeys.js"' in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")
    assert client.get("/auth/passkeys.js").headers["content-type"].startswith("text/javascript")


def test_password_change_route(client, door):
    _login(client, door)
    weak = client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": "password1234"}
    )
    assert weak.status_code == 400 and "common passwords" in weak.json()["detail"]
    changed = client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
    )
    assert changed.status_code == 200
    assert client.get("/auth/session").json()["user"] == "alice"


def test_totp_self_enrolment_needs_a_fresh_factor_and_returns_a_qr_code(client, door):
    _login(client, door)
    enrolled = client.post("/auth/totp/enroll")
    assert enrolled.status_code == 200
    body = enrolled.json()
    assert body["qr_svg"].startswith("<svg") and body["otpauth_uri"].endswith("issuer=Custodes")
    assert len(body["recovery_codes"]) == 10
    door.clock.advance(minutes=11)
    assert client.post("/auth/totp/enroll").status_code == 403


def test_form_posts_are_refused(client, door):
    form = {"username": "alice", "password": PASSWORD, "totp": door.code()}
    response = client.post("/auth/login", data=form)
    assert response.status_code == 422


def test_passkey_routes_refuse_without_a_session_or_with_a_stale_ceremony(client, door):
    assert client.post("/auth/passkeys/register/options").status_code == 401
    options = client.post("/auth/passkeys/login/options", json={}).json()
    assert options["publicKey"]["rpId"] == "localhost"
    assert options["publicKey"]["userVerification"] == "required"
    bogus = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
    unknown = client.post(
        "/auth/passkeys/login/verify", json={"ceremony": "nope", "credential": bogus}
    )
    assert unknown.status_code == 400 and "unknown or expired" in unknown.json()["detail"]
    stranger = client.post(
        "/auth/passkeys/login/verify", json={"ceremony": options["ceremony"], "credential": bogus}
    )
    assert stranger.status_code == 400 and stranger.json()["detail"] == (
        "this passkey is not registered here"
    )
    # A ceremony is used once.
    again = client.post(
        "/auth/passkeys/login/verify", json={"ceremony": options["ceremony"], "credential": bogus}
    )
    assert "unknown or expired" in again.json()["detail"]
    assert ("login", "minor_failure") in door.kinds()


def test_registration_options_require_user_verification(client, door):
    _login(client, door)
    options = client.post("/auth/passkeys/register/options").json()["publicKey"]
    selection = options["authenticatorSelection"]
    assert selection["userVerification"] == "required" and selection["residentKey"] == "required"
    assert options["rp"] == {"name": "Custodes", "id": "localhost"}
    assert "alice" not in options["user"]["id"]  # the user handle is a digest, not the name


def test_users_list_and_end_their_other_sessions(client, door, tmp_path):
    door.service.add_user("bob", "nurse", PASSWORD)  # someone else's sessions stay
    door.secrets["bob"] = door.service.enroll_totp("bob").secret
    door.service.login("bob", PASSWORD, door.code("bob"), "10.0.0.3")
    _login(client, door)
    door.next_step()
    elsewhere = door.service.login("alice", PASSWORD, door.code(), "10.0.0.9")
    listed = client.get("/auth/sessions").json()["sessions"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    assert {s["source_ip"] for s in listed} == {"testclient", "10.0.0.9"}
    other = next(s["session"] for s in listed if not s["current"])
    assert elsewhere.session_id not in str(listed)  # handles, never the ids
    door.clock.advance(minutes=11)
    assert client.post("/auth/sessions/end", json={"session": other}).status_code == 403
    door.next_step()
    client.post("/auth/step-up", json={"totp": door.code()})
    assert client.post("/auth/sessions/end", json={"session": other}).json() == {"ended": 1}
    assert len(client.get("/auth/sessions").json()["sessions"]) == 1
    assert len(door.store.sessions_of("bob")) == 1


def test_after_a_reset_the_session_may_only_enrol_a_factor(client, door):
    door.service.reset_second_factors("alice", by="custodes response")
    assert _login(client, door, totp=None).status_code == 200  # the password alone, once
    refused = client.get("/auth/sessions")
    assert refused.status_code == 403 and "enrol a second factor first" in refused.json()["detail"]
    assert client.get("/auth/step-up/export").status_code == 403
    enrolled = client.post("/auth/totp/enroll")  # no step-up asked: there is no factor
    assert enrolled.status_code == 200 and len(enrolled.json()["recovery_codes"]) == 10
    assert client.get("/auth/sessions").status_code == 200


def test_a_demanded_step_up_is_refused_until_given(client, door):
    _login(client, door)
    assert client.get("/auth/step-up/export").json()["allowed"] is True
    door.clock.advance(seconds=1)
    door.service.demand_step_up("alice")
    refused = client.get("/auth/step-up/export")
    assert refused.status_code == 403 and "given after" in refused.json()["detail"]
    door.next_step()
    assert client.post("/auth/step-up", json={"totp": door.code()}).status_code == 200
    assert client.get("/auth/step-up/export").json()["allowed"] is True
