"""Fabric CA's REST API (ca/server.py) in-process over its ASGI app, on SQLite and PostgreSQL.

Each hostile request is refused with Fabric CA's error envelope, and the CA's identities and
certificates are unchanged afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from medalliance.ca import CaStore, FabricCa
from medalliance.ca.client import Enrollment, _csr
from medalliance.ca.server import create_ca_app
from medalliance.ca.token import sign_token
from medalliance.database_url import parse_database_url
from medalliance.identity.ca import ATTRIBUTE_EXTENSION_OID, CertificateAuthority

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def ca(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FabricCa]:
    """A CA on SQLite, or on PostgreSQL when parametrised so (the full flow runs on both)."""
    database_url = f"sqlite:///{tmp_path / 'ca.db'}"
    if getattr(request, "param", "sqlite") == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    authority = CertificateAuthority.create("ca.hospc.example.com", "hospc.example.com", now=NOW)
    store = CaStore(parse_database_url(database_url), "ca-hospc")
    fabric_ca = FabricCa("ca-hospc", authority, store, max_enrollments=3)
    fabric_ca.bootstrap("admin", "adminpw")
    yield fabric_ca
    fabric_ca.close()


@pytest.fixture
def api(ca: FabricCa) -> TestClient:
    return TestClient(create_ca_app(ca))


def enroll(
    api: TestClient, who: str, secret: str, **extra: Any
) -> tuple[int, dict[str, Any], Enrollment | None]:
    key = ec.generate_private_key(ec.SECP256R1())
    body = {"certificate_request": _csr(key, who), **extra}
    answer = api.post("/api/v1/enroll", json=body, auth=(who, secret))
    envelope = answer.json()
    if not envelope["success"]:
        return answer.status_code, envelope, None
    cert = base64.b64decode(envelope["result"]["Cert"])
    return answer.status_code, envelope, Enrollment(who, cert, key, b"")


def signed(
    api: TestClient,
    who: Enrollment,
    path: str,
    body: Any = None,
    *,
    sign_body: bytes | None = None,
    method: str = "POST",
) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    token = sign_token(who.cert_pem, who.key, method, path, raw if sign_body is None else sign_body)
    return api.request(method, path, content=raw or None, headers={"Authorization": token})


def snapshot(ca: FabricCa) -> tuple[object, ...]:
    store = ca._store  # the state a refused request must leave alone
    return tuple(store.identities()), tuple(
        c for i in store.identities() for c in store.certificates(i.enrollment_id)
    )


@pytest.mark.parametrize("ca", ["sqlite", "postgresql"], indirect=True)
def test_enrol_register_enrol_reenrol_and_revoke(api: TestClient, ca: FabricCa) -> None:
    info = api.get("/api/v1/cainfo").json()
    assert info["success"]
    assert info["result"]["CAName"] == "ca-hospc"
    assert base64.b64decode(info["result"]["CAChain"]) == ca.authority.cert_pem
    status, _, admin = enroll(api, "admin", "adminpw")
    assert status == 200
    assert admin is not None
    reg = {
        "id": "nurse1",
        "type": "client",
        "affiliation": "",
        "max_enrollments": 0,
        "attrs": [{"name": "role", "value": "clerk", "ecert": True}],
    }
    answer = signed(api, admin, "/api/v1/register", reg)
    assert answer.status_code == 200, answer.json()
    secret = answer.json()["result"]["secret"]
    _, _, nurse = enroll(api, "nurse1", secret)
    assert nurse is not None
    cert = x509.load_pem_x509_certificate(nurse.cert_pem)
    cert.verify_directly_issued_by(ca.authority.certificate)
    ext = cert.extensions.get_extension_for_oid(ATTRIBUTE_EXTENSION_OID).value
    assert json.loads(ext.value)["attrs"]["role"] == "clerk"  # type: ignore[attr-defined]
    assert (
        cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        == "client"
    )
    key2 = ec.generate_private_key(ec.SECP256R1())
    again = signed(api, nurse, "/api/v1/reenroll", {"certificate_request": _csr(key2, "nurse1")})
    assert again.status_code == 200
    listed = signed(api, admin, "/api/v1/identities", method="GET").json()["result"]["identities"]
    assert {i["id"] for i in listed} == {"admin", "nurse1"}
    revoked = signed(api, admin, "/api/v1/revoke", {"id": "nurse1", "gencrl": True}).json()
    assert len(revoked["result"]["RevokedCerts"]) == 2
    crl = x509.load_pem_x509_crl(base64.b64decode(revoked["result"]["CRL"]))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    gencrl = signed(api, admin, "/api/v1/gencrl", {}).json()
    assert x509.load_pem_x509_crl(base64.b64decode(gencrl["result"]["CRL"])).is_signature_valid(
        ca.authority.certificate.public_key()  # type: ignore[arg-type]
    )
    # revoked: it can neither reenrol with its certificate nor enrol with its secret
    before = snapshot(ca)
    key3 = ec.generate_private_key(ec.SECP256R1())
    refused = signed(api, nurse, "/api/v1/reenroll", {"certificate_request": _csr(key3, "nurse1")})
    assert refused.status_code == 403
    assert not refused.json()["success"]
    assert enroll(api, "nurse1", secret)[0] == 403
    assert snapshot(ca) == before


def _other_ca_enrollment() -> Enrollment:
    other = CertificateAuthority.create("ca.evil.example.com", "hospc.example.com", now=NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = other.certify(key.public_key(), "admin", node_ou="client", now=NOW)
    return Enrollment("admin", cert, key, b"")


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, FabricCa, Enrollment]]:
    """One CA and its enrolled registrar for every hostile request (each changes nothing)."""
    authority = CertificateAuthority.create("ca.hospc.example.com", "hospc.example.com", now=NOW)
    url = parse_database_url(f"sqlite:///{tmp_path_factory.mktemp('ca') / 'ca.db'}")
    fabric_ca = FabricCa("ca-hospc", authority, CaStore(url, "ca-hospc"))
    fabric_ca.bootstrap("admin", "adminpw")
    api = TestClient(create_ca_app(fabric_ca))
    _, _, admin = enroll(api, "admin", "adminpw")
    assert admin is not None
    yield api, fabric_ca, admin
    fabric_ca.close()


REG = {"id": "eve", "attrs": [{"name": "role", "value": "doctor", "ecert": True}]}
ADMIN_AUTH = ("admin", "adminpw")


def _fresh_csr(who: str) -> str:
    return _csr(ec.generate_private_key(ec.SECP256R1()), who)


HOSTILE: list[Any] = [
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/enroll", json={"certificate_request": _fresh_csr("admin")}, auth=("admin", "x")
        ),
        403,
        id="an enrolment with a wrong secret is refused",
    ),
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/enroll",
            json={"certificate_request": _fresh_csr("nobody")},
            auth=("nobody", "x"),
        ),
        403,
        id="an enrolment of an unknown ID is refused",
    ),
    pytest.param(
        lambda api, admin: signed(api, _other_ca_enrollment(), "/api/v1/register", REG),
        403,
        id="a token signed by a certificate of another CA is refused",
    ),
    pytest.param(
        lambda api, admin: signed(
            api, admin, "/api/v1/register", REG, sign_body=json.dumps({"id": "x"}).encode()
        ),
        403,
        id="a token replayed with a different body is refused",
    ),
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/register",
            content=json.dumps(REG).encode(),
            headers={
                "Authorization": sign_token(
                    admin.cert_pem, admin.key, "POST", "/api/v1/revoke", json.dumps(REG).encode()
                )
            },
        ),
        403,
        id="a token made for another endpoint is refused",
    ),
    pytest.param(
        lambda api, admin: api.post("/api/v1/register", json=REG),
        403,
        id="a registration without a token is refused",
    ),
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/register", json=REG, headers={"Authorization": "x.y.z"}
        ),
        403,
        id="a malformed token is refused",
    ),
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/enroll",
            json={"certificate_request": _mismatched_csr("admin")},
            auth=ADMIN_AUTH,
        ),
        400,
        id="a CSR whose key does not match its signature is refused",
    ),
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/enroll", json={"certificate_request": _fresh_csr("root")}, auth=ADMIN_AUTH
        ),
        400,
        id="a CSR naming another enrollment ID is refused",
    ),
    pytest.param(
        lambda api, admin: api.post("/api/v1/enroll", content=b"\xff{", auth=ADMIN_AUTH),
        400,
        id="a body that is not JSON is refused",
    ),
    pytest.param(
        lambda api, admin: signed(api, admin, "/api/v1/register", {**REG, "caname": "ca-other"}),
        404,
        id="a request for another CA name is refused",
    ),
    pytest.param(
        lambda api, admin: api.post(
            "/api/v1/enroll", content=b"{" + b" " * 70000 + b"}", auth=ADMIN_AUTH
        ),
        400,
        id="a body over the size limit is refused",
    ),
    pytest.param(
        lambda api, admin: signed(api, admin, "/api/v1/revoke", {"serial": "abc", "aki": "00ff"}),
        404,
        id="revoking a certificate of another CA's AKI is refused",
    ),
]


@pytest.mark.parametrize(("call", "status"), HOSTILE)
def test_hostile_requests_are_refused_and_change_nothing(
    hostile: tuple[TestClient, FabricCa, Enrollment], call: Any, status: int
) -> None:
    api, ca, admin = hostile
    before = snapshot(ca)
    answer = call(api, admin)
    envelope = answer.json()
    assert answer.status_code == status
    assert envelope["success"] is False
    assert envelope["errors"][0]["message"]
    assert snapshot(ca) == before
    assert "adminpw" not in json.dumps(snapshot(ca), default=str)


def test_max_enrollments_and_registrar_limits(api: TestClient, ca: FabricCa) -> None:
    _, _, admin = enroll(api, "admin", "adminpw")
    assert admin is not None
    reg = {
        "id": "once",
        "max_enrollments": 1,
        "secret": "s3cret-once",
        "attrs": [
            {"name": "hf.Registrar.Roles", "value": "client"},
            {"name": "hf.Registrar.Attributes", "value": "role"},
        ],
    }
    assert signed(api, admin, "/api/v1/register", reg).status_code == 200
    assert signed(api, admin, "/api/v1/register", reg).status_code == 409  # registered already
    assert enroll(api, "once", "s3cret-once")[0] == 200
    before = snapshot(ca)
    assert enroll(api, "once", "s3cret-once")[0] == 403
    assert snapshot(ca) == before
    # a department registrar (clients with `role` only): a peer or a revoker is refused
    limited = _enrol_registrar(api, admin)
    for body in (
        {"id": "p1", "type": "peer"},
        {"id": "r1", "attrs": [{"name": "hf.Revoker", "value": "true"}]},
    ):
        before = snapshot(ca)
        answer = signed(api, limited, "/api/v1/register", body)
        assert answer.status_code == 403, body
        assert snapshot(ca) == before
    # it cannot see the admin, nor revoke it
    assert signed(api, limited, "/api/v1/identities/admin", method="GET").status_code == 404
    assert signed(api, limited, "/api/v1/revoke", {"id": "admin"}).status_code == 403
    assert signed(api, limited, "/api/v1/gencrl", {}).status_code == 403  # lacks hf.GenCRL


def _enrol_registrar(api: TestClient, admin: Enrollment) -> Enrollment:
    reg = {
        "id": "dept",
        "secret": "dept-pw",
        "affiliation": "hospc.ward",
        "attrs": [
            {"name": "hf.Registrar.Roles", "value": "client"},
            {"name": "hf.Registrar.Attributes", "value": "role"},
        ],
    }
    assert signed(api, admin, "/api/v1/register", reg).status_code == 200
    _, _, dept = enroll(api, "dept", "dept-pw")
    assert dept is not None
    return dept


def _mismatched_csr(who: str) -> str:
    """A CSR signed by one key but carrying another's public key."""
    signer = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    pem = _csr(signer, who).encode()
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    spki = lambda k: k.public_key().public_bytes(  # noqa: E731
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    swapped = der.replace(spki(signer), spki(other))
    assert swapped != der
    return x509.load_der_x509_csr(swapped).public_bytes(serialization.Encoding.PEM).decode()


def test_a_flood_of_guessed_secrets_is_turned_away_and_the_ca_keeps_serving(
    api: TestClient, ca: FabricCa
) -> None:
    # Each guess costs an argon2id check; past MAX_ENROLLING at once they get 503, not the CPU.
    before = snapshot(ca)
    body = {"certificate_request": _csr(ec.generate_private_key(ec.SECP256R1()), "admin")}

    async def flood() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ca") as client:
            return await asyncio.gather(
                *(
                    client.post("/api/v1/enroll", json=body, auth=("admin", f"guess{i}"))
                    for i in range(24)
                )
            )

    answers = asyncio.run(flood())
    statuses = sorted({a.status_code for a in answers})
    assert statuses == [403, 503], statuses  # refused guesses, and those turned away
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["Retry-After"] == "1"
    assert "retry" in busy.json()["errors"][0]["message"]
    assert snapshot(ca) == before
    assert api.get("/api/v1/cainfo").json()["success"]
    status, _, enrolled = enroll(api, "admin", "adminpw")  # the flood is over: it enrols
    assert (status, enrolled is not None) == (200, True)
