"""``create_app(custodes)``: the FastAPI application over a wired ``Custodes``.

Errors never carry a traceback to the client: each known error becomes a 4xx with a
one-line ``detail``; anything else is logged here and answered with a plain 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from custodes import __version__
from custodes.api.deps import session_cookie_name
from custodes.api.routes import auth, cases, metrics
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


def create_app(custodes: Custodes) -> FastAPI:
    app = FastAPI(
        title="Custodes",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.custodes = custodes
    app.state.session_cookie = session_cookie_name(custodes.settings.cookie_secure)
    app.include_router(auth.router)
    app.include_router(cases.router)
    app.include_router(metrics.router)

    @app.exception_handler(CustodesError)
    async def _known(request: Request, err: CustodesError) -> JSONResponse:
        status = next(code for kind, code in _STATUS if isinstance(err, kind))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(err)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse(
            {"detail": f"the request is not valid: {where}: {first.get('msg', 'invalid')}"},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
