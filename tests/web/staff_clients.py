"""One logged-in `StaffClient` per account for a whole module — a login costs an argon2
verification, and the commission and operator tests switch between many accounts. A module
uses it as a module-scoped fixture: `yield from logged_in(web_app)`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import FastAPI

from tests.web.conftest import StaffClient, login


def logged_in(web_app: FastAPI) -> Iterator[Callable[[str], StaffClient]]:
    clients: dict[str, StaffClient] = {}

    def get(username: str) -> StaffClient:
        if username not in clients:
            client = StaffClient(web_app)
            response = login(client, username)
            assert response.status_code == 303, f"login as {username} failed"  # type: ignore[attr-defined]
            client.csrf_token = client.get("/api/v1/me").json()["csrf_token"]
            clients[username] = client
        return clients[username]

    yield get
    for client in clients.values():
        client.close()
