"""The operations endpoint reports a node that is up but cannot do its work as unhealthy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from tests.networks import free_ports

from medalliance.node.operations import OperationsServer


@pytest.fixture
def served() -> Iterator[tuple[OperationsServer, dict[str, Any], str]]:
    state: dict[str, Any] = {"name": "orderer0", "problems": []}
    address = f"127.0.0.1:{free_ports(1)[0]}"
    server = OperationsServer(address, lambda: dict(state))
    server.start()
    server.healthy = True
    try:
        yield server, state, address
    finally:
        server.close()


def get(address: str, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_node_without_problems_is_healthy(
    served: tuple[OperationsServer, dict[str, Any], str],
) -> None:
    _, _, address = served
    assert get(address, "/healthz") == (200, {"status": "OK"})
    assert get(address, "/status")[1]["healthy"] is True


def test_a_node_reporting_a_problem_is_unhealthy_and_says_why(
    served: tuple[OperationsServer, dict[str, Any], str],
) -> None:
    _, state, address = served
    state["problems"] = ["consensus on mychannel halted: would equivocate"]
    code, body = get(address, "/healthz")
    assert (code, body["status"]) == (503, "SERVICE_UNAVAILABLE")
    assert body["problems"] == state["problems"]
    assert get(address, "/status")[1]["healthy"] is False
