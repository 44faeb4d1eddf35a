"""``/auth``: sign-in, sign-out, step-up and passkeys. Each route calls one use case."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from custodes.api.deps import (
    CallerDep,
    ClientIpDep,
    EnrollingSessionDep,
    IdentityDep,
    SessionDep,
)
from custodes.identity.errors import StepUpRequired
from custodes.identity.service import IdentityService
from custodes.identity.sessions import IssuedSession
from custodes.identity.stepup import Operation
from custodes.identity.totp import qr_svg

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    totp: str | None = Field(default=None, max_length=64)


class CodeRequest(BaseModel):
    totp: str = Field(max_length=64)


class PasswordChangeRequest(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasskeyOptionsRequest(BaseModel):
    username: str | None = Field(default=None, max_length=256)


class CeremonyResponse(BaseModel):
    ceremony: str = Field(max_length=64)
    credential: dict[str, Any]


def _session_response(
    request: Request, identity: IdentityService, issued: IssuedSession, body: dict | None = None
) -> JSONResponse:
    """The session id as an HttpOnly cookie for the browser and a bearer token for APIs."""
    expires_in = identity.sessions.seconds_left(issued.record)
    response = JSONResponse(
        body
        or {"access_token": issued.session_id, "token_type": "bearer", "expires_in": expires_in}
    )
    response.set_cookie(
        request.app.state.session_cookie,
        issued.session_id,
        max_age=expires_in,
        httponly=True,
        secure=request.app.state.cookie_secure,
        samesite="strict",
        path="/",
    )
    return response


@router.post("/login")
def login(body: LoginRequest, request: Request, identity: IdentityDep, ip: ClientIpDep):
    """Password and second factor in; a session out. One 401 for every failure."""
    old = request.cookies.get(request.app.state.session_cookie)
    issued = identity.login(body.username, body.password, body.totp, ip)
    if old:  # a new id at every login: a planted cookie is never promoted
        identity.sessions.end(old)
    return _session_response(request, identity, issued)


@router.post("/logout")
def logout(request: Request, identity: IdentityDep, caller: SessionDep) -> Response:
    identity.logout(caller.credential)
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(
        request.app.state.session_cookie,
        path="/",
        secure=request.app.state.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/session")
def session(identity: IdentityDep, caller: CallerDep) -> dict:
    """Who is signed in, and which step-up operations are open to the session now."""
    now = identity.clock.now()
    fresh = (
        [op for op in Operation if identity.step_up_policy.missing(caller.session, op, now) is None]
        if caller.session
        else []
    )
    return {
        "user": caller.user.name,
        "role": str(caller.user.role),
        "kind": "session" if caller.session else "token",
        "mfa_method": caller.session.mfa_method if caller.session else None,
        "step_up_fresh": fresh,
        "scopes": list(caller.token.scopes) if caller.token else [],
    }


@router.post("/step-up")
def step_up(body: CodeRequest, request: Request, identity: IdentityDep, caller: SessionDep):
    """A fresh TOTP code; the session gets a new id (privilege changed)."""
    issued = identity.step_up(caller.credential, body.totp)
    return _session_response(request, identity, issued)


@router.get("/step-up/{operation}")
def step_up_check(operation: Operation, identity: IdentityDep, caller: SessionDep) -> dict:
    """200 when the session may do ``operation`` now; 403 saying what is missing."""
    identity.require_step_up(caller.session, operation)
    return {"operation": str(operation), "allowed": True}


@router.post("/password")
def change_password(
    body: PasswordChangeRequest, request: Request, identity: IdentityDep, caller: SessionDep
):
    """The current password and a new one; other sessions end, this one gets a new id."""
    issued = identity.change_password(caller.credential, body.current_password, body.new_password)
    return _session_response(request, identity, issued)


@router.post("/totp/enroll")
def totp_enroll(identity: IdentityDep, caller: EnrollingSessionDep) -> dict:
    """A new TOTP secret for the signed-in user, with its QR code (SVG) for an
    authenticator app and new recovery codes, shown once. Needs a fresh second factor."""
    enrolment = identity.enroll_own_totp(caller.credential)
    return {
        "secret": enrolment.secret,
        "otpauth_uri": enrolment.uri,
        "qr_svg": qr_svg(enrolment.uri),
        "recovery_codes": list(enrolment.recovery.codes),
    }


class EndSessionsRequest(BaseModel):
    session: str | None = Field(default=None, max_length=64, description="None: all others.")


@router.get("/sessions")
def list_sessions(identity: IdentityDep, caller: SessionDep) -> dict:
    """The signed-in user's live sessions, on every device."""
    return {"sessions": identity.list_sessions(caller.credential)}


@router.post("/sessions/end")
def end_sessions(body: EndSessionsRequest, identity: IdentityDep, caller: SessionDep) -> dict:
    """End one other session (by its handle) or all others; needs a fresh second factor."""
    return {"ended": identity.end_other_sessions(caller.credential, body.session)}


@router.get("/passkeys", response_class=HTMLResponse)
def passkeys_page() -> HTMLResponse:
    """A small page that runs the passkey ceremonies in the browser."""
    return HTMLResponse(_static("passkeys.html"))


@router.get("/passkeys.js")
def passkeys_script() -> Response:
    return Response(_static("passkeys.js"), media_type="text/javascript")


@router.post("/passkeys/register/options")
def passkey_register_options(identity: IdentityDep, caller: EnrollingSessionDep) -> dict:
    ceremony, options = identity.passkey_registration_options(caller.credential)
    return {"ceremony": ceremony, "publicKey": options}


@router.post("/passkeys/register/verify")
def passkey_register_verify(
    body: CeremonyResponse, identity: IdentityDep, caller: EnrollingSessionDep
) -> dict:
    identity.register_passkey(caller.credential, body.ceremony, body.credential)
    return {"registered": True}


@router.post("/passkeys/login/options")
def passkey_login_options(body: PasskeyOptionsRequest, identity: IdentityDep) -> dict:
    """Without a name, any passkey of this site may answer (discoverable credentials).
    User verification is required: the passkey is the only credential, so the device's
    own check (fingerprint, face or PIN) is the second factor."""
    ceremony, options = identity.passkeys.authentication_options(
        body.username or None, require_verification=True
    )
    return {"ceremony": ceremony, "publicKey": options}


@router.post("/passkeys/login/verify")
def passkey_login_verify(
    body: CeremonyResponse, request: Request, identity: IdentityDep, ip: ClientIpDep
):
    issued = identity.passkey_login(body.ceremony, body.credential, ip)
    return _session_response(request, identity, issued)


@router.post("/passkeys/step-up/options")
def passkey_step_up_options(identity: IdentityDep, caller: SessionDep) -> dict:
    """Options that require user verification: the gate to the most sensitive tier."""
    ceremony, options = identity.passkeys.authentication_options(
        caller.user.name, require_verification=True
    )
    return {"ceremony": ceremony, "publicKey": options}


@router.post("/passkeys/step-up/verify")
def passkey_step_up_verify(
    body: CeremonyResponse, request: Request, identity: IdentityDep, caller: SessionDep
):
    issued = identity.passkey_step_up(caller.credential, body.ceremony, body.credential)
    if issued.record.verified_at is None:
        raise StepUpRequired("the passkey did not verify its user")
    return _session_response(request, identity, issued)


def _static(name: str) -> str:
    return resources.files("custodes.api").joinpath("static", name).read_text()
