"""``create_app(custodes)``: the FastAPI application over a wired ``Custodes``.

Served over TLS (``create_app(custodes, tls=True)``), every response carries HSTS and the
session cookie is always Secure. Errors never carry a traceback to the client: each known error becomes a 4xx with a
one-line ``detail``; anything else is logged here and answered with a plain 500.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes import __version__
from custodes.api.deps import session_cookie_name
from custodes.api.routes import auth, cases, fhir, metrics
from custodes.api.tls import HSTS
from custodes.bootstrap import Custodes
from custodes.core.errors import CustodesError, ServiceUnavailableError
from custodes.correlate.service import CaseClosedError, CaseNotFoundError
from custodes.identity.errors import (
    AccountError,
    EnrolmentRequired,
    InvalidCredentials,
    NotAuthenticated,
    PasskeyError,
    PasswordRejected,
    StepUpRequired,
)
from custodes.respond.executor import StepNotFoundError
from custodes.vault.errors import (
    AccessDenied,
    InvalidResource,
    RecordGone,
    RecordNotFound,
    VersionMismatch,
)
from custodes.vault.service import RecordUnreadable

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[CustodesError], int], ...] = (
    (InvalidCredentials, 401),
    (NotAuthenticated, 401),
    (StepUpRequired, 403),
    (EnrolmentRequired, 403),
    (cases.ForbiddenError, 403),
    (CaseNotFoundError, 404),
    (StepNotFoundError, 404),
    (CaseClosedError, 409),
    (AccessDenied, 403),
    (RecordNotFound, 404),
    (RecordGone, 410),
    (VersionMismatch, 412),
    (InvalidResource, 400),
    (RecordUnreadable, 500),
    (PasskeyError, 400),
    (PasswordRejected, 400),
    (AccountError, 400),
    (ServiceUnavailableError, 503),
    (CustodesError, 400),
)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
}


class SecurityHeaders:
    """Adds the security headers to every response a route has not set them on.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
    runs each request through an extra task and stream, a measurable share of a vault read.
    """

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                missing = [(k, v) for k, v in self.extra if k not in present]
                if missing:
                    message = {**message, "headers": [*message.get("headers", []), *missing]}
            await send(message)

        await self.app(scope, receive, with_headers)


class DropQueryStrings(logging.Filter):
    """Access logs keep the path, never the query: a search such as
    ``Patient?identifier=MRN...`` or ``?name=...`` carries PHI in its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def create_app(custodes: Custodes, *, tls: bool = False) -> FastAPI:
    """The application; ``tls`` when it is served over HTTPS (HSTS, Secure cookies)."""
    app = FastAPI(
        title="Custodes",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.custodes = custodes
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryStrings) for f in access_log.filters):
        access_log.addFilter(DropQueryStrings())
    # Under TLS the cookie is Secure whatever CUSTODES_COOKIE_SECURE says.
    app.state.cookie_secure = tls or custodes.settings.cookie_secure
    app.state.session_cookie = session_cookie_name(app.state.cookie_secure)
    headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if tls else {})}
    app.include_router(auth.router)
    app.include_router(cases.router)
    app.include_router(metrics.router)
    app.include_router(fhir.router)

    def _fhir(request: Request) -> bool:
        return request.url.path == "/fhir" or request.url.path.startswith("/fhir/")

    @app.exception_handler(CustodesError)
    async def _known(request: Request, err: CustodesError) -> JSONResponse:
        status = next(code for kind, code in _STATUS if isinstance(err, kind))
        if _fhir(request):
            return fhir.outcome_for(err, status)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(err)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if _fhir(request):
            message = f"the request is not valid: {where}: {first.get('msg', 'invalid')}"
            return fhir.fhir_response(fhir.operation_outcome(message, "invalid"), 400)
        return JSONResponse(
            {"detail": f"the request is not valid: {where}: {first.get('msg', 'invalid')}"},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        if _fhir(request):
            return fhir.fhir_response(fhir.operation_outcome("internal error", "exception"), 500)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_middleware(SecurityHeaders, headers=headers)
    return app


def app_from_environment() -> FastAPI:
    """The application of one ``custodes serve --workers N`` process, built from the
    ``CUSTODES_*`` settings (``CUSTODES_SERVE_TLS=1`` when served over HTTPS)."""
    from custodes.bootstrap import Settings

    return create_app(Custodes(Settings()), tls=os.environ.get("CUSTODES_SERVE_TLS") == "1")
