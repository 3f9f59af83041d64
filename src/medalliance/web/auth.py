"""Who is asking: the `Staff` member of a request and the dependencies every route uses.

The session middleware (web/security.py) resolves the session cookie or the bearer token once per
request into `request.state.staff`. Pages depend on `page_staff` (no session: 303 to /login), the
JSON API and FHIR on `api_staff` (no credentials: 401 JSON), and both on `require_role(...)` when
only some roles may use a route (403). The contracts check again on the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import HTTPException, Request

from medalliance.web.staff import Role, Staff


class LoginRequired(Exception):
    """A page was asked for without a session: the app answers 303 to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__("log in first")
        self.location = "/login?next=" + quote(next_path, safe="/")


def current_staff(request: Request) -> Staff | None:
    staff = getattr(request.state, "staff", None)
    return staff if isinstance(staff, Staff) else None


def page_staff(request: Request) -> Staff:
    """The session's staff member; without a session, a redirect to the login page."""
    staff = current_staff(request)
    if staff is None:
        raise LoginRequired(request.url.path)
    return staff


def api_staff(request: Request) -> Staff:
    """The staff member of the session cookie or `Authorization: Bearer <token>`; else 401."""
    staff = current_staff(request)
    if staff is None:
        detail = getattr(request.state, "auth_error", None) or (
            "log in, or send an API token as 'Authorization: Bearer <token>'"
        )
        raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
    return staff


def is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/fhir/", "/fhir", "/events"))


def require_role(*roles: Role) -> Callable[[Request], Staff]:
    """A dependency: the staff member if their role is one of `roles`, else 403 (a page path
    without a session redirects to /login; an API path answers 401)."""

    def dependency(request: Request) -> Staff:
        staff = api_staff(request) if is_api_path(request.url.path) else page_staff(request)
        if staff.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}")
        return staff

    return dependency
