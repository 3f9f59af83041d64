"""Discovery's pure parts: every minimal endorsement layout, and the request's TLS binding."""

from __future__ import annotations

import hashlib

import pytest
from fabric_protos.discovery import protocol_pb2 as discovery_pb2
from fabric_protos.peer import policy_pb2

from medalliance.errors import InvalidArgument
from medalliance.gateway.discovery import check_tls_binding
from medalliance.gateway.plan import application_requirement, every_plan
from medalliance.identity.policy import parse_policy


def requirement(text: str, members: tuple[str, ...] = ("A", "B", "C")):  # type: ignore[no-untyped-def]
    policy = policy_pb2.ApplicationPolicy(signature_policy=parse_policy(text))
    return application_requirement(policy.SerializeToString(), members)


@pytest.mark.parametrize(
    ("text", "candidates", "layouts"),
    [
        pytest.param("AND('A.peer', 'B.peer')", ["A", "B", "C"], [("A", "B")],
                     id="an AND needs both organisations in one layout"),
        pytest.param("OR('A.peer', 'B.peer')", ["A", "B", "C"], [("A",), ("B",)],
                     id="an OR gives one layout per organisation"),
        pytest.param("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", ["A", "B", "C"],
                     [("A", "B"), ("A", "C"), ("B", "C")],
                     id="two of three gives every pair and no triple"),
        pytest.param("AND('A.peer', 'B.peer')", ["A", "C"], [],
                     id="an organisation without peers leaves no layout"),
    ],
)  # fmt: skip
def test_every_minimal_layout(
    text: str, candidates: list[str], layouts: list[tuple[str, ...]]
) -> None:
    assert every_plan([requirement(text)], candidates, limit=64, budget=4096) == layouts


def test_the_layouts_are_bounded() -> None:
    orgs = [f"O{i}" for i in range(12)]
    anyone = lambda chosen: True  # noqa: E731 - every single organisation satisfies
    assert len(every_plan([anyone], orgs, limit=5, budget=4096)) == 5
    never = lambda chosen: False  # noqa: E731 - nothing satisfies: stops at the budget
    assert every_plan([never], orgs, limit=64, budget=100) == []


CERT_HASH = hashlib.sha256(b"client certificate").digest()


def request(claimed: bytes) -> discovery_pb2.Request:
    return discovery_pb2.Request(
        authentication=discovery_pb2.AuthInfo(client_identity=b"x", client_tls_cert_hash=claimed)
    )


@pytest.mark.parametrize(
    ("claimed", "presented", "refused"),
    [
        pytest.param(b"", None, False, id="no certificate and no claim is fine without mutual TLS"),
        pytest.param(CERT_HASH, None, False, id="a claim without a verified certificate binds nothing"),
        pytest.param(CERT_HASH, CERT_HASH, False, id="the hash of the presented certificate binds"),
        pytest.param(b"\x00" * 32, CERT_HASH, True, id="another certificate's hash is refused"),
        pytest.param(b"", CERT_HASH, True, id="no claim with a presented certificate is refused"),
    ],
)  # fmt: skip
def test_tls_binding(claimed: bytes, presented: bytes | None, refused: bool) -> None:
    if refused:
        with pytest.raises(InvalidArgument, match="doesn't match computed TLS hash"):
            check_tls_binding(request(claimed), presented)
    else:
        check_tls_binding(request(claimed), presented)
