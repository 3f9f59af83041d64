"""`create_app`: the FastAPI application of the web client over a `WebBackend`.

Wires the security middleware (sessions, CSRF, headers, access log; web/security.py), the static
files, the routers of web/routes.py and one exception handler that maps our typed errors to their
HTTP status (errors.py): an error page for pages, `{"error", "message"}` for the JSON API and an
OperationOutcome for FHIR. Interactive API docs are off (they load scripts the CSP forbids); the
OpenAPI description is at /openapi.json.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from medalliance.errors import MedallianceError
from medalliance.web.auth import LoginRequired, current_staff, is_api_path
from medalliance.web.backend import WebBackend
from medalliance.web.core_routes import LoginLimiter
from medalliance.web.i18n import N_
from medalliance.web.routes import ROUTERS
from medalliance.web.security import SecurityMiddleware, WebSettings
from medalliance.web.templating import render

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
FHIR_JSON = "application/fhir+json"

_TITLES = {
    400: N_("The request could not be used"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    409: N_("The alliance refused the change"),
    413: N_("The request is too large"),
    422: N_("The request could not be used"),
    429: N_("Too many requests"),
    500: N_("Something went wrong"),
    503: N_("A service is unavailable"),
    504: N_("A service did not answer in time"),
}
_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict",
          422: "invalid", 429: "throttled", 503: "transient"}  # fmt: skip


def create_app(backend: WebBackend, settings: WebSettings | None = None) -> FastAPI:
    """The web client over `backend`; `settings` default to `WebSettings()`."""
    settings = settings or WebSettings()
    app = FastAPI(
        title="medalliance",
        summary="The medical alliance's JSON API and FHIR R4 REST for hospital systems",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.backend = backend
    app.state.settings = settings
    app.state.login_limiter = LoginLimiter(settings)
    app.add_middleware(
        SecurityMiddleware, accounts=backend.accounts, settings=settings, served=backend.serves
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(MedallianceError)
    async def medalliance_error(request: Request, exc: MedallianceError) -> Response:
        status = exc.status.http
        if status >= 500 and status not in (503, 504):
            log.error("request failed", exc_info=exc)
        return error_response(request, status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        response = error_response(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422, _problems(exc.errors(), skip=1))

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError) -> Response:
        # A model built inside a route from path or form input: bad input, not a bug.
        return error_response(request, 422, _problems(exc.errors(), skip=0))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error", exc_info=exc)
        return error_response(request, 500, "an unexpected error occurred; it has been logged")


def _problems(errors: Sequence[Any], skip: int) -> str:
    """What is wrong, by field name and rule; never the values (they may be patient data)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[skip:]) or 'request'}: {e.get('msg', '')}"
        for e in errors[:5]
    )
    return problems or "the request is malformed"


def error_response(request: Request, status: int, message: str) -> Response:
    """An error in the form the caller reads: FHIR OperationOutcome, JSON, or an error page."""
    path = request.url.path
    if path.startswith("/fhir"):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": _fhir_code(status), "diagnostics": message}],
        }
        return JSONResponse(outcome, status_code=status, media_type=FHIR_JSON)
    if is_api_path(path):
        return JSONResponse(
            {"error": _CODES.get(status, "error"), "message": message}, status_code=status
        )
    title = _TITLES.get(status, _TITLES[500] if status >= 500 else _TITLES[400])
    return render(
        request, "error.html", {"title": title, "message": message}, current_staff(request),
        status_code=status,
    )  # fmt: skip


def _fhir_code(status: int) -> str:
    return {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict",
            422: "invalid", 429: "throttled"}.get(status, "exception")  # fmt: skip
