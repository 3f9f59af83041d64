"""The web client's security rules, as a careless or hostile user would probe them.

Every refusal is checked together with what it must leave unchanged (no session, the language
kept, the account still usable). Fast in-process tests over one embedded demo per module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from medalliance.web.app import create_app
from medalliance.web.backend import WebBackend
from medalliance.web.events import EventHub
from medalliance.web.security import SESSION_COOKIE, WebSettings
from tests.web.conftest import PASSWORD, StaffClient, login

# Routes anyone may call: the login form, the language switch (a cookie), the OpenAPI text.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/language"), ("GET", "/openapi.json")}


def _flat(routes: list[Any]) -> Iterator[Any]:
    """Routes, with included routers opened (FastAPI >= 0.16x keeps them as branches)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _flat(route.effective_candidates())
        else:
            yield route


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with placeholder ids) of every route of the app, static files aside."""
    out = []
    for route in _flat(app.routes):
        if isinstance(route, Mount):
            continue
        methods = getattr(route, "methods", None) or getattr(
            getattr(route, "starlette_route", None), "methods", None
        )
        for method in sorted(methods or ()):
            if method != "HEAD":
                out.append((method, route.path.replace("{", "").replace("}", "")))
    return out


def test_every_route_but_login_needs_a_session(web_app: FastAPI) -> None:
    """Enumerates app.routes, so a route added later without a staff dependency fails here."""
    client = TestClient(web_app)
    routes = [r for r in _routes(web_app) if r not in PUBLIC]
    assert ("GET", "/events") in routes
    for method, path in routes:
        response = client.request(method, path, follow_redirects=False)
        if path.startswith(("/api/", "/fhir", "/events")):
            assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        else:
            assert response.status_code == 303, f"{method} {path} answered {response.status_code}"
            assert response.headers["location"].startswith("/login")


def test_a_wrong_password_is_refused_then_rate_limited(web_backend: WebBackend) -> None:
    client = TestClient(create_app(web_backend))  # its own limiter: other tests' failures aside
    for _ in range(5):
        refused = login(client, "doctor.secondaryb", "wrong password!")
        assert refused.status_code == 401  # type: ignore[attr-defined]
        assert SESSION_COOKIE not in client.cookies
    limited = login(client, "doctor.secondaryb", PASSWORD)
    assert limited.status_code == 429  # type: ignore[attr-defined]
    assert "15" in limited.text  # type: ignore[attr-defined]  # says how long to wait
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v1/me").status_code == 401
    # another user from another address is not locked out by it
    other = TestClient(create_app(web_backend))
    assert login(other, "clerk.secondaryb").status_code == 303  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/logout", {}),
        ("/language", {"language": "en"}),
    ],
    ids=["a logout without its CSRF token is refused", "a language switch without it is refused"],
)
def test_a_cookie_post_without_its_csrf_token_changes_nothing(
    client_as: Callable[[str], StaffClient],
    web_backend: WebBackend,
    path: str,
    data: dict[str, str],
) -> None:
    client = client_as("reviewer.cityhc")
    before = web_backend.accounts.get("reviewer.cityhc")
    for token in ("", "forged-token", client.csrf_token[:-1]):
        response = client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert response.status_code == 403, token
    assert web_backend.accounts.get("reviewer.cityhc") == before
    assert client.get("/api/v1/me").json()["username"] == "reviewer.cityhc"


def test_a_login_form_without_its_own_token_is_refused(anonymous_client: TestClient) -> None:
    response = anonymous_client.post(
        "/login", data={"username": "doctor.tertiarya", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in anonymous_client.cookies


def test_tokens_of_disabled_accounts_revoked_or_forged_are_refused(
    web_backend: WebBackend, anonymous_client: TestClient
) -> None:
    accounts = web_backend.accounts
    accounts.add(web_backend.config, "his.secondaryb", "SecondaryHospitalB", "Clerk1", PASSWORD)
    kept = accounts.issue_token("his.secondaryb", "HIS")
    revoked = accounts.issue_token("his.secondaryb", "old HIS")
    accounts.revoke_token(revoked.token_id)

    def me(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return anonymous_client.get("/api/v1/me", headers=headers).status_code

    assert me(kept.token) == 200
    assert me(revoked.token) == 401
    assert me(kept.token[:-2] + "xx") == 401  # the right id with a forged secret
    assert me("mat_") == 401
    accounts.disable("his.secondaryb")
    assert me(kept.token) == 401
    assert login(anonymous_client, "his.secondaryb").status_code == 401  # type: ignore[attr-defined]


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(
    web_backend: WebBackend,
) -> None:
    for https in (False, True):
        client = TestClient(
            create_app(web_backend, WebSettings(https=https)),
            base_url="https://testserver" if https else "http://testserver",
        )
        response = login(client, "auditor.districthc")
        (cookie,) = [
            c
            for c in response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
            if c.startswith(f"{SESSION_COOKIE}=")
        ]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert ("Secure" in cookie) is https


def test_an_idle_session_ends(web_backend: WebBackend) -> None:
    now = [1_000_000.0]
    client = TestClient(create_app(web_backend, WebSettings(idle_minutes=30, clock=lambda: now[0])))
    login(client, "operator.districthc")
    now[0] += 29 * 60
    assert client.get("/api/v1/me").status_code == 200  # and the idle clock restarts
    now[0] += 29 * 60
    assert client.get("/api/v1/me").status_code == 200
    now[0] += 31 * 60
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_login_never_redirects_to_another_site(anonymous_client: TestClient) -> None:
    page = anonymous_client.get("/login", params={"next": "//evil.example/x"})
    assert "evil.example" not in page.text
    client = anonymous_client
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"username": "doctor.tertiaryb", "password": PASSWORD, "csrf_token": token,
              "next": "https://evil.example/"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.headers["location"] == "/hospital/"


def test_every_page_and_error_page_carries_the_csp(client_as: Callable[[str], StaffClient]) -> None:
    client = client_as("doctor.secondarya")
    for path in ("/login", "/no-such-page", "/static/app.css", "/api/v1/me"):
        response = client.get(path, follow_redirects=False)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    assert client.get("/api/v1/me").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


def test_live_events_reach_only_the_organisations_they_concern(web_backend: WebBackend) -> None:
    hub = EventHub(web_backend.config)
    events = [
        e for b in web_backend.network.blocks("CityHC", 0, None) for e in hub.publish_block(b)
    ]
    created = [e for e in events if e.type == "ReferralCreated"]
    assert created, "the demo's referrals published no ReferralCreated"
    up = next(e for e in created if e.fields.get("direction") == "UP")
    assert {"SecondaryAMSP", "TertiaryAMSP", "DistrictHCMSP", "CityHCMSP"} <= up.audience
    assert "SecondaryBMSP" not in up.audience
    assert "TertiaryBMSP" not in up.audience
    assert not hub.visible_to("SecondaryBMSP") or all(
        "SecondaryBMSP" in e.audience for e in hub.visible_to("SecondaryBMSP")
    )
    assert "clinicalRef" not in up.to_json()  # ids, types and statuses only


def test_the_access_log_has_no_query_string(
    client_as: Callable[[str], StaffClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = client_as("doctor.tertiarya")
    with caplog.at_level(logging.INFO, logger="medalliance.web.access"):
        client.get("/api/v1/me", params={"idNumber": "110101199003077777"})
    lines = [r.getMessage() for r in caplog.records if r.name == "medalliance.web.access"]
    assert any("GET /api/v1/me 200" in line and "doctor.tertiarya" in line for line in lines)
    assert not any("110101" in line or "idNumber" in line for line in lines)


# Which roles may use each part of the app; every other role is refused with 403 on every route.
PARTS = [
    ("/hospital", ("doctor", "clerk")),
    ("/api/v1/hospital", ("doctor", "clerk")),
    ("/fhir", ("doctor", "clerk")),
    ("/commission", ("reviewer", "auditor")),
    ("/api/v1/commission", ("reviewer", "auditor")),
    ("/operator", ("operator",)),
    ("/api/v1/operator", ("operator",)),
]
ONE_OF_EACH_ROLE = {
    "doctor": "doctor.secondarya",
    "clerk": "clerk.tertiaryb",
    "reviewer": "reviewer.districthc",
    "auditor": "auditor.cityhc",
    "operator": "operator.cityhc",
}


@pytest.fixture(scope="module")
def one_client_per_role(web_app: FastAPI) -> Iterator[dict[str, StaffClient]]:
    clients = {}
    for role, username in ONE_OF_EACH_ROLE.items():
        client = StaffClient(web_app)
        assert login(client, username).status_code == 303  # type: ignore[attr-defined]
        client.csrf_token = client.get("/api/v1/me").json()["csrf_token"]
        clients[role] = client
    yield clients
    for client in clients.values():
        client.close()


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    PARTS,
    ids=[f"only {' and '.join(a)} may use {p}" for p, a in PARTS],
)
def test_every_route_of_a_part_refuses_the_other_roles(
    web_app: FastAPI,
    one_client_per_role: dict[str, StaffClient],
    prefix: str,
    allowed: tuple[str, ...],
) -> None:
    """Enumerates app.routes: a route added later without its role check fails here."""
    routes = [r for r in _routes(web_app) if r[1] == prefix or r[1].startswith(prefix + "/")]
    assert routes, f"no route under {prefix}"
    for role, client in one_client_per_role.items():
        if role in allowed:
            continue
        for method, path in routes:
            body = {} if method in ("POST", "PUT", "PATCH") else None  # a well-formed, empty body
            response = client.request(
                method, path, json=body, headers={"X-CSRF-Token": client.csrf_token},
                follow_redirects=False,
            )  # fmt: skip
            assert response.status_code == 403, f"{role}: {method} {path} -> {response.status_code}"


def test_a_body_over_the_limit_is_refused_before_any_route_runs(web_backend: WebBackend) -> None:
    """A flood of bytes in one request: refused with 413 before the body is parsed, nothing
    written; a request within the limit still goes through."""
    client = StaffClient(create_app(web_backend, WebSettings(max_body_bytes=4096)))
    assert login(client, "doctor.secondarya").status_code == 303  # type: ignore[attr-defined]
    token = client.get("/api/v1/me").json()["csrf_token"]
    headers = {"X-CSRF-Token": token}

    def visits() -> int:
        raw = web_backend.network.evaluate(
            "SecondaryAMSP", "User1", "visit", "PatientsAt", "SecondaryAMSP"
        )
        return len(json.loads(raw))

    before = visits()
    flood = {"patient_id": "sa-p1", "padding": "x" * 8192}
    refused = client.post("/api/v1/hospital/visits", json=flood, headers=headers)
    assert refused.status_code == 413
    assert "too large" in refused.json()["message"]
    assert visits() == before
    accepted = client.post("/api/v1/hospital/visits", json={"patient_id": "sa-p1"}, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert visits() == before + 1
