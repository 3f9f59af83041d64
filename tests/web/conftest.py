"""Fixtures of the web client's tests, shared by every part of it (hospital, commission, core).

- `demo_template` (session): the demo alliance with the paper's referral workflow (fig. 5) run
  once — visits, applications (one rejected, one approved), an upward referral accepted and
  completed with feedback, settlement, a downward referral — in a folder modules copy.
- `web_backend` (module): a `WebBackend` over a private copy of that alliance (every demo
  organisation served), with an account for every demo identity (made once, in the template's
  DIR/web-accounts.db), all with `PASSWORD`:
  doctor.secondarya, clerk.secondarya, doctor.tertiarya, clerk.tertiaryb, reviewer.districthc,
  auditor.cityhc, operator.cityhc, ... (web/demo_accounts.py: role.<first domain label>).
- `web_app` (module): `create_app` over it.
- `client_as(username)`: a `StaffClient` (FastAPI TestClient) logged in as that account through
  the login form; `client.csrf_token` is the session's CSRF token for POST forms (field
  `csrf_token`) or the `X-CSRF-Token` header. `anonymous_client` has no session.
A module that changes the ledger changes only its own copy.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from medalliance.app.demo import default_config_path, run_demo
from medalliance.node.config import load_network_config
from medalliance.web.accounts import AccountStore
from medalliance.web.app import create_app
from medalliance.web.backend import WebBackend, accounts_location
from medalliance.web.demo_accounts import demo_identities

PASSWORD = "correct horse battery staple"
_LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class StaffClient(TestClient):
    """A TestClient with the session's CSRF token."""

    csrf_token: str = ""

    def post_form(self, url: str, data: dict[str, str] | None = None, **kwargs: object) -> object:
        """POST a form with the session's CSRF token added."""
        return self.post(url, data={"csrf_token": self.csrf_token, **(data or {})}, **kwargs)  # type: ignore[arg-type]


def login(client: TestClient, username: str, password: str = PASSWORD) -> object:
    """Log `client` in through the login form (its CSRF cookie and token); the response."""
    page = client.get("/login")
    match = _LOGIN_TOKEN.search(page.text)
    token = match.group(1) if match else ""
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo alliance after one run of the referral workflow (copied, never used)."""
    directory = tmp_path_factory.mktemp("web-demo") / "net"
    result = run_demo(default_config_path(), directory)
    assert all(step.ok for step in result.steps), [s for s in result.steps if not s.ok]
    # The accounts once, in the folder modules copy (DIR/web-accounts.db): an argon2 hash each.
    config = load_network_config(default_config_path())
    accounts = AccountStore(accounts_location(directory, None))
    try:
        organizations = tuple(o.name for o in config.organizations)
        for login_ in demo_identities(config, organizations):
            accounts.add(config, login_.username, login_.organization, login_.identity, PASSWORD)
    finally:
        accounts.close()
    return directory


@pytest.fixture(scope="module")
def web_backend(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebBackend]:
    directory = tmp_path_factory.mktemp("web") / "net"
    shutil.copytree(demo_template, directory)
    backend = WebBackend.embedded(directory)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def web_app(web_backend: WebBackend) -> FastAPI:
    return create_app(web_backend)


@pytest.fixture
def anonymous_client(web_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(web_app) as client:
        yield client


@pytest.fixture
def client_as(web_app: FastAPI) -> Iterator[Callable[[str], StaffClient]]:
    clients: list[StaffClient] = []

    def make(username: str) -> StaffClient:
        client = StaffClient(web_app)
        clients.append(client)
        response = login(client, username)
        assert response.status_code == 303, f"login as {username} failed: {response.status_code}"  # type: ignore[attr-defined]
        client.csrf_token = client.get("/api/v1/me").json()["csrf_token"]
        return client

    yield make
    for client in clients:
        client.close()
