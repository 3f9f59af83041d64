"""The web client's own pages: log in and out, `/` (the role's home), the language switch and the
live-event stream `GET /events`.

Login failures are counted per username and per client address (moving windows, `limits`); over
the limit a login is refused with 429 before the password is even checked. The login form carries
its own CSRF token in a short-lived cookie (no session exists yet), so a forged cross-site login
is refused too.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from medalliance.web.accounts import LoginRefused
from medalliance.web.auth import api_staff, current_staff
from medalliance.web.backend import WebBackend
from medalliance.web.i18n import LANGUAGES, N_
from medalliance.web.security import SESSION_COOKIE, WebSettings
from medalliance.web.staff import Staff
from medalliance.web.templating import LANGUAGE_COOKIE, render

log = logging.getLogger(__name__)
LOGIN_COOKIE = "medalliance_login"
KEEPALIVE_SECONDS = 15.0

router = APIRouter(include_in_schema=False)
api_router = APIRouter()


class LoginLimiter:
    """Failed logins per username and per client address, in moving windows (in memory: one
    server process per organisation; a restart forgets, which only helps a waiting user)."""

    def __init__(self, settings: WebSettings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_user = parse(settings.login_limit)
        self._per_address = parse(settings.address_limit)

    def allowed(self, username: str, address: str) -> bool:
        return self._limiter.test(self._per_user, "user", username) and self._limiter.test(
            self._per_address, "address", address
        )

    def failed(self, username: str, address: str) -> None:
        self._limiter.hit(self._per_user, "user", username)
        self._limiter.hit(self._per_address, "address", address)


def backend_of(request: Request) -> WebBackend:
    backend: WebBackend = request.app.state.backend
    return backend


def settings_of(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def safe_next(value: str) -> str:
    """A local path to go to after login; anything else (another site, `//host`) is `/`."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@router.get("/")
def home(request: Request) -> Response:
    staff = current_staff(request)
    return RedirectResponse(staff.home if staff else "/login", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    staff = current_staff(request)
    if staff is not None:
        return RedirectResponse(staff.home, status_code=303)
    return _login_form(request, safe_next(next), "", None)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    backend, settings = backend_of(request), settings_of(request)
    limiter: LoginLimiter = request.app.state.login_limiter
    address = request.client.host if request.client else "-"
    username = username.strip().lower()
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _login_form(
            request, safe_next(next), username,
            N_("The login form expired. Please try again."), 403,
        )  # fmt: skip
    if not limiter.allowed(username, address):
        log.warning("login rate-limited", extra={"username": username})
        return _login_form(
            request, safe_next(next), username,
            N_("Too many failed logins. Wait 15 minutes and try again, or ask your administrator."),
            429,
        )  # fmt: skip
    try:
        account = backend.accounts.verify(username, password)
        if not backend.serves(account.organization):
            raise LoginRefused()
    except LoginRefused:
        limiter.failed(username, address)
        return _login_form(
            request, safe_next(next), username, N_("Wrong username or password."), 401
        )
    session_id, _ = backend.accounts.open_session(account, settings.clock())
    target = safe_next(next)
    response = RedirectResponse(
        Staff.of(account).home if target == "/" else target, status_code=303
    )
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, secure=settings.https, samesite="lax", path="/"
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    session_id = getattr(request.state, "session_id", "")
    if session_id:
        backend_of(request).accounts.close_session(session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
def switch_language(
    request: Request,
    language: Annotated[str, Form(max_length=10)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if language not in LANGUAGES:
        language = "zh_CN"
    staff = current_staff(request)
    if staff is not None:
        backend_of(request).accounts.set_language(staff.username, language)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE, language, httponly=True, secure=settings_of(request).https,
        samesite="lax", path="/", max_age=365 * 86400,
    )  # fmt: skip
    return response


class Me(BaseModel):
    """Who the caller is, and the CSRF token a cookie session sends with state changes."""

    username: str
    organization: str
    msp_id: str
    identity: str
    role: str
    language: str
    csrf_token: str


@api_router.get("/api/v1/me", tags=["session"])
def me(request: Request, staff: Annotated[Staff, Depends(api_staff)]) -> Me:
    """The logged-in staff member (session cookie or bearer token)."""
    return Me(
        username=staff.username, organization=staff.organization, msp_id=staff.msp_id,
        identity=staff.identity, role=staff.role, language=staff.language,
        csrf_token=getattr(request.state, "csrf", ""),
    )  # fmt: skip


@router.get("/events")
async def events(request: Request, staff: Annotated[Staff, Depends(api_staff)]) -> Response:
    """Server-sent events: the contract facts the staff member's organisation may see (ids,
    types and statuses only). Each message's data is the JSON fact; its `type` names it."""
    hub = backend_of(request).events
    subscriber = hub.subscribe(staff.msp_id)
    # A reconnecting EventSource names the last event it saw: replay what it missed meanwhile.
    last_seen = request.headers.get("last-event-id", "")
    if last_seen.isascii() and last_seen.isdigit():
        first_live = subscriber.queue[0].seq if subscriber.queue else None
        missed = [
            e
            for e in hub.visible_to(staff.msp_id)
            if e.seq > int(last_seen) and (first_live is None or e.seq < first_live)
        ]
        subscriber.queue.extendleft(reversed(missed))

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            while True:
                while subscriber.queue:
                    event = subscriber.queue.popleft()
                    yield {"id": str(event.seq), "data": event.to_json()}
                subscriber.ready.clear()
                if subscriber.queue:
                    continue
                try:
                    await asyncio.wait_for(subscriber.ready.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
        finally:
            hub.unsubscribe(subscriber)

    return EventSourceResponse(stream(), ping=KEEPALIVE_SECONDS)


def _login_form(
    request: Request, next_path: str, username: str, error: str | None, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    request.state.csrf = token
    response = render(
        request, "login.html", {"next": next_path, "username": username, "error": error}, None,
        status_code=status,
    )  # fmt: skip
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, secure=settings_of(request).https,
        samesite="strict", path="/login", max_age=3600,
    )  # fmt: skip
    return response
