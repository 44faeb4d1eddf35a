"""Typed dependencies: the identity service, the caller's address, the signed-in caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from custodes.core.accounts import ApiTokenRecord, SessionRecord, UserAccount
from custodes.identity.errors import EnrolmentRequired, NotAuthenticated
from custodes.identity.service import IdentityService
from custodes.identity.tokens import PREFIX as TOKEN_PREFIX

#: The session cookie. ``__Host-`` makes the browser insist on Secure, Path=/ and no
#: Domain, so no sibling site can plant or read it (ASVS 3.4.4). Without the Secure
#: flag (``CUSTODES_COOKIE_SECURE=false``) the prefix is not allowed, so it is dropped.
SESSION_COOKIE = "__Host-custodes_session"
PLAIN_SESSION_COOKIE = "custodes_session"


def session_cookie_name(secure: bool) -> str:
    return SESSION_COOKIE if secure else PLAIN_SESSION_COOKIE


def get_identity(request: Request) -> IdentityService:
    return request.app.state.custodes.identity


def get_client_ip(request: Request) -> str | None:
    # The direct peer: a proxy's X-Forwarded-For is trusted only once TLS termination
    # and the proxy list are configured (a later issue).
    return request.client.host if request.client else None


def presented_credential(request: Request) -> str:
    """The bearer token, else the session cookie, else an empty string."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(request.app.state.session_cookie, "")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a person with a session, or a service with an API token."""

    user: UserAccount
    credential: str
    session: SessionRecord | None = None
    token: ApiTokenRecord | None = None


IdentityDep = Annotated[IdentityService, Depends(get_identity)]
ClientIpDep = Annotated[str | None, Depends(get_client_ip)]


def _caller(request: Request, identity: IdentityService, *, enrolling: bool) -> Caller:
    credential = presented_credential(request)
    if credential.startswith(TOKEN_PREFIX):
        token = identity.tokens.check(credential)
        user = identity.store.get_user(token.user_name)
        if user is None or user.locked_at(identity.clock.now()):
            raise NotAuthenticated()
        if user.mfa_enrolment_required:
            raise EnrolmentRequired()
        return Caller(user, credential, token=token)
    session, user = identity.authenticate(credential, enrolling=enrolling)
    return Caller(user, credential, session=session)


def get_caller(request: Request, identity: IdentityDep) -> Caller:
    return _caller(request, identity, enrolling=False)


def get_session_caller(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if caller.session is None:
        raise NotAuthenticated("this needs a signed-in session, not an API token")
    return caller


def get_enrolling_caller(request: Request, identity: IdentityDep) -> Caller:
    """A signed-in session that may be one whose second factors a response reset: the
    routes that enrol a new factor take it."""
    return get_session_caller(_caller(request, identity, enrolling=True))


CallerDep = Annotated[Caller, Depends(get_caller)]
SessionDep = Annotated[Caller, Depends(get_session_caller)]
EnrollingSessionDep = Annotated[Caller, Depends(get_enrolling_caller)]
