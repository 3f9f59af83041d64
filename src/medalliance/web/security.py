"""The security middleware of the web client: sessions, CSRF, headers and the access log.

One pure ASGI middleware, in front of every route:
- resolves the session cookie (idle timeout) or `Authorization: Bearer <token>` into
  `request.state.staff` and the session's CSRF token into `request.state.csrf`;
- refuses a state-changing request (POST/PUT/PATCH/DELETE) of a cookie session that does not
  carry the session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`) — before any
  route runs, so a forged form changes nothing (the OWASP synchronizer-token pattern; a token
  caller sends no cookie and needs none);
- adds the security headers (a strict CSP: scripts and styles from this origin only, no inline;
  `Cache-Control: no-store` on everything a logged-in person is shown);
- writes one access-log line per request: method, path without query string, status, duration,
  organisation and username — never a query string, body, cookie or token.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medalliance.errors import MedallianceError
from medalliance.web.accounts import AccountStore, SessionInfo
from medalliance.web.auth import is_api_path
from medalliance.web.staff import Staff

log = logging.getLogger("medalliance.web.access")
SESSION_COOKIE = "medalliance_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True, slots=True)
class WebSettings:
    """How the web client runs; the defaults suit the demo on loopback."""

    https: bool = False  # behind TLS (or a TLS-terminating proxy): cookies get `Secure`
    idle_minutes: float = 30.0
    login_limit: str = "5/15 minutes"  # failed logins per username
    address_limit: str = "20/15 minutes"  # failed logins per client address
    max_body_bytes: int = 25 * 1024 * 1024  # a referral's images fit
    clock: Callable[[], float] = field(default=time.time)

    @property
    def idle_seconds(self) -> float:
        return self.idle_minutes * 60


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, accounts: AccountStore, settings: WebSettings,
                 served: Callable[[str], bool]) -> None:  # fmt: skip
        self.app = app
        self.accounts = accounts
        self.settings = settings
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        state = scope.setdefault("state", {})
        headers = Headers(scope=scope)
        await self._authenticate(state, headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                raw = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        raw.append((name.encode(), value.encode()))
                if self.settings.https:
                    raw.append((b"strict-transport-security", b"max-age=31536000"))
                # What a logged-in person sees may be patient data: no browser or proxy keeps it.
                if (
                    state.get("staff") is not None
                    and b"cache-control" not in present
                    and not scope["path"].startswith("/static/")
                ):
                    raw.append((b"cache-control", b"no-store"))
                message["headers"] = raw
            await send(message)

        try:
            refusal, receive = await self._check_csrf(scope, receive, state, headers)
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            staff = state.get("staff")
            log.info(
                "%s %s %s %.1fms %s %s",
                scope["method"], scope["path"], status["code"],
                (time.perf_counter() - started) * 1000,
                staff.organization if staff else "-", staff.username if staff else "-",
            )  # fmt: skip

    async def _authenticate(self, state: dict[str, Any], headers: Headers) -> None:
        state["staff"], state["csrf"], state["via_token"], state["session_id"] = None, "", False, ""
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            try:
                account = await anyio.to_thread.run_sync(self.accounts.account_for_token, token)
            except MedallianceError as exc:
                state["auth_error"] = str(exc)
                return
            if self.served(account.organization):
                state["staff"], state["via_token"] = Staff.of(account), True
            else:
                state["auth_error"] = f"this server does not act for {account.organization}"
            return
        session_id = _cookie(headers, SESSION_COOKIE)
        if not session_id:
            return
        now = self.settings.clock()
        info: SessionInfo | None = await anyio.to_thread.run_sync(
            self.accounts.session, session_id, now, self.settings.idle_seconds
        )
        if info is not None and self.served(info.account.organization):
            state["staff"], state["csrf"] = Staff.of(info.account), info.csrf
            state["session_id"] = session_id

    async def _check_csrf(
        self, scope: Scope, receive: Receive, state: dict[str, Any], headers: Headers
    ) -> tuple[ASGIApp | None, Receive]:
        """(a refusal to send instead of the route, or None; the receive the route reads)."""
        if scope["method"] not in UNSAFE:
            return None, receive
        body = await _read_body(receive, self.settings.max_body_bytes)
        if body is None:
            return _refuse(scope, 413, "the request is too large"), receive
        replay = _replay(body, receive)
        expected = state["csrf"]
        if not expected or state["via_token"]:  # no cookie session: nothing for a forger to ride
            return None, replay
        sent = headers.get(CSRF_HEADER, "")
        if not sent:
            sent = await _form_token(scope, body, headers)
        if sent and hmac.compare_digest(sent.encode(), expected.encode()):
            return None, replay
        return _refuse(
            scope, 403,
            "the form has no valid security token (it may have expired); reload the page and "
            "submit it again",
        ), replay  # fmt: skip


def _cookie(headers: Headers, name: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is as good as none
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, then: Receive | None = None) -> Receive:
    """The buffered body once, then the client's own messages (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _form_token(scope: Scope, body: bytes, headers: Headers) -> str:
    content_type = headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD, [""])
        return values[0]
    if content_type.startswith("multipart/form-data"):
        try:
            form = await Request(scope, _replay(body)).form()
        except Exception:  # malformed multipart: no token
            return ""
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _refuse(scope: Scope, status: int, message: str) -> ASGIApp:
    if is_api_path(scope["path"]):
        return JSONResponse({"error": "forbidden" if status == 403 else "too_large",
                             "message": message}, status_code=status)  # fmt: skip
    from medalliance.web.templating import render  # templating imports this module

    request = Request(scope)
    title = "Not allowed" if status == 403 else "The request is too large"
    staff = request.state.staff if isinstance(request.state.staff, Staff) else None
    response: Response = render(
        request, "error.html", {"title": title, "message": message}, staff, status_code=status
    )
    return response
