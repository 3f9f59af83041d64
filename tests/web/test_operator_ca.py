"""The operator's Fabric CA page and API (/operator/ca, /api/v1/operator/ca/...) in-process over
the embedded demo alliance, against a REAL CA server: TertiaryHospitalA's, started as
`medalliance ca start` starts it (app/org_ca.open_org_ca under uvicorn with TLS) on a free
port, its registrar `admin` enrolled once into the organisation's folder with the random
bootstrap secret, as docs/web.md says. One CA server and one web app for the module."""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import yaml
from cryptography import x509
from fastapi import FastAPI

from medalliance.app.org_ca import (
    BOOTSTRAP_SECRET_FILE,
    CA_SERVER,
    OrgCa,
    ca_client,
    enroll_into,
    open_org_ca,
)
from medalliance.ca.client import CaClient
from medalliance.ca.server import create_ca_app
from medalliance.errors import PermissionDenied
from medalliance.identity.ca import ATTRIBUTE_EXTENSION_OID
from medalliance.node.bootstrap import NetworkLayout
from medalliance.web.app import create_app
from medalliance.web.backend import WebBackend
from tests.networks import free_ports, wait_until
from tests.web.conftest import StaffClient
from tests.web.staff_clients import logged_in

ORG = "TertiaryHospitalA"
OPERATOR = "operator.tertiarya"
_SECRET = re.compile(r'data-testid="ca-secret">([^<]+)<')


class CaServer:
    """The organisation's CA under uvicorn in a thread; stopped and started again on one port."""

    def __init__(self, served: OrgCa) -> None:
        self.served = served
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            create_ca_app(self.served.ca), host="127.0.0.1", port=self.served.port,
            log_level="warning", access_log=False,
            ssl_certfile=str(self.served.tls_cert), ssl_keyfile=str(self.served.tls_key),
        )  # fmt: skip
        server = uvicorn.Server(config)
        self._server, self._thread = server, threading.Thread(target=server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: server.started, "the CA server listens", timeout_s=30)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = self._thread = None


@dataclass
class CaWeb:
    app: FastAPI
    backend: WebBackend
    layout: NetworkLayout
    server: CaServer
    client: CaClient  # the CA as its own clients reach it (a person enrolling)


@pytest.fixture(scope="module")
def ca_web(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaWeb]:
    directory = tmp_path_factory.mktemp("web-ca") / "net"
    shutil.copytree(demo_template, directory)
    config = yaml.safe_load((directory / "network.yaml").read_text(encoding="utf-8"))
    ports = free_ports(2)
    for org in config["organizations"]:
        # TertiaryHospitalA runs its CA here; TertiaryHospitalB has one configured whose
        # registrar nobody enrolled in this folder.
        if org["name"] in ("TertiaryHospitalA", "TertiaryHospitalB"):
            org["ca"] = {"port": ports.pop()}
    (directory / "network.yaml").write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    layout = NetworkLayout.load(directory)
    served = open_org_ca(layout, ORG)
    server = CaServer(served)
    server.start()
    try:
        secret_file = layout.org_dir(ORG) / CA_SERVER / BOOTSTRAP_SECRET_FILE
        enroll_into(layout, ORG, "admin", secret_file.read_text().strip(), None)
        backend = WebBackend.embedded(directory)
        try:
            yield CaWeb(create_app(backend), backend, layout, server, ca_client(layout, ORG))
        finally:
            backend.close()
    finally:
        server.stop()
        served.ca.close()


@pytest.fixture(scope="module")
def as_user(ca_web: CaWeb) -> Iterator[Callable[[str], StaffClient]]:
    yield from logged_in(ca_web.app)


def _ids(operator: StaffClient) -> dict[str, dict[str, object]]:
    answer = operator.get("/api/v1/operator/ca/identities")
    assert answer.status_code == 200, answer.text
    return {i["id"]: i for i in answer.json()["identities"]}


def _crl(operator: StaffClient) -> list[str]:
    answer = operator.get("/api/v1/operator/ca/crl")
    assert answer.status_code == 200, answer.text
    return [e["serial"] for e in answer.json()["entries"]]


def test_register_shows_the_generated_secret_once_and_the_person_enrols_with_it(
    ca_web: CaWeb, as_user: Callable[[str], StaffClient], caplog: pytest.LogCaptureFixture
) -> None:
    operator = as_user(OPERATOR)
    caplog.set_level(logging.DEBUG)
    page = operator.post_form(
        "/operator/ca/identities",
        {"enrollment_id": "doctor7", "type": "client", "role": "doctor", "max_enrollments": "1"},
    )
    assert page.status_code == 200, page.text  # type: ignore[attr-defined]
    secret = _SECRET.search(page.text).group(1)  # type: ignore[attr-defined, union-attr]
    assert len(secret) >= 12
    assert page.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    assert "Registered doctor7" in page.text or "已注册 doctor7" in page.text  # type: ignore[attr-defined]

    # the person enrols with it; the certificate carries the alliance role
    enrolled = ca_web.client.enroll("doctor7", secret)
    cert = x509.load_pem_x509_certificate(enrolled.cert_pem)
    attrs = cert.extensions.get_extension_for_oid(ATTRIBUTE_EXTENSION_OID).value
    assert json.loads(attrs.value)["attrs"]["role"] == "doctor"  # type: ignore[attr-defined]

    # listed with its role; never shown again, nor logged
    row = _ids(operator)["doctor7"]
    assert (row["type"], row["role"], row["max_enrollments"], row["revoked"]) == (
        "client", "doctor", 1, False,
    )  # fmt: skip
    listing = operator.get("/operator/ca")
    assert 'data-id="doctor7"' in listing.text
    assert secret not in listing.text
    assert not [r for r in caplog.records if secret in r.getMessage() or secret in str(r.__dict__)]

    # a secret the operator chooses is not echoed
    chosen = operator.post(
        "/api/v1/operator/ca/identities",
        json={"id": "clerk7", "role": "clerk", "secret": "a chosen secret 7"},
        headers={"X-CSRF-Token": operator.csrf_token},
    )
    assert chosen.json() == {"id": "clerk7", "secret": None}
    assert ca_web.client.enroll("clerk7", "a chosen secret 7").enrollment_id == "clerk7"


def test_the_cas_refusals_are_clear_messages_and_change_nothing(
    as_user: Callable[[str], StaffClient],
) -> None:
    operator = as_user(OPERATOR)
    headers = {"X-CSRF-Token": operator.csrf_token}
    assert operator.post(
        "/api/v1/operator/ca/identities", json={"id": "twice1"}, headers=headers
    ).status_code == 200  # fmt: skip
    before = _ids(operator)
    again = operator.post_form("/operator/ca/identities", {"enrollment_id": "twice1"})
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "registered already" in again.text  # type: ignore[attr-defined]
    unknown = operator.post("/api/v1/operator/ca/revoke", json={"id": "nobody"}, headers=headers)
    assert unknown.status_code == 404
    assert "nobody" in unknown.json()["message"]
    assert _ids(operator) == before


def test_revoking_puts_the_serials_on_the_crl_and_the_crl_goes_to_a_vote(
    ca_web: CaWeb, as_user: Callable[[str], StaffClient]
) -> None:
    operator = as_user(OPERATOR)
    headers = {"X-CSRF-Token": operator.csrf_token}
    for user in ("nurse8", "nurse9"):
        operator.post(
            "/api/v1/operator/ca/identities",
            json={"id": user, "role": "clerk", "secret": f"secret of {user}!"},
            headers=headers,
        )
    nurse8 = ca_web.client.enroll("nurse8", "secret of nurse8!")
    nurse9 = ca_web.client.enroll("nurse9", "secret of nurse9!")

    # the identity, on the page, with a reason
    page = operator.post_form(
        "/operator/ca/revoke", {"enrollment_id": "nurse8", "reason": "keycompromise"}
    )
    assert page.status_code == 200, page.text  # type: ignore[attr-defined]
    assert f'data-serials="{nurse8.serial_hex}"' in page.text  # type: ignore[attr-defined]
    assert f'data-serial="{nurse8.serial_hex}"' in page.text  # type: ignore[attr-defined]
    assert 'data-id="nurse8" data-revoked="true"' in page.text  # type: ignore[attr-defined]
    assert "nurse8：1" in page.text or "nurse8: 1" in page.text  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied, match="revoked"):
        ca_web.client.enroll("nurse8", "secret of nurse8!")

    # one certificate, through the API: the identity stays
    one = operator.post(
        "/api/v1/operator/ca/revoke",
        json={"serial": nurse9.serial_hex, "reason": "superseded"},
        headers=headers,
    )
    assert one.json()["serials"] == [nurse9.serial_hex]
    assert {nurse8.serial_hex, nurse9.serial_hex} <= set(_crl(operator))
    assert _ids(operator)["nurse9"]["revoked"] is False

    # the CRL becomes a pending membership vote on the operator's channel
    votes_before = len(operator.get("/api/v1/operator/votes").json())
    proposed = operator.post_form("/operator/ca/crl/propose")
    assert proposed.status_code == 200, proposed.text  # type: ignore[attr-defined]
    assert "CRL of TertiaryAMSP" in proposed.text  # type: ignore[attr-defined]
    votes = operator.get("/api/v1/operator/votes").json()
    assert len(votes) == votes_before + 1
    (vote,) = (v for v in votes if "CRL" in v["description"])
    assert (
        vote["description"]
        == "revoke the 2 certificate(s) of its CA's CRL of TertiaryAMSP on alliance"
    )
    assert vote["signers"] == []


@pytest.mark.parametrize(
    "username",
    ["doctor.tertiarya", "clerk.tertiarya", "auditor.cityhc", "reviewer.districthc"],
    ids=lambda u: f"{u.split('.')[0]} is refused every CA page and API route",
)
def test_other_roles_are_refused_and_nothing_changes(
    as_user: Callable[[str], StaffClient], username: str
) -> None:
    before = _ids(as_user(OPERATOR))
    crl_before = _crl(as_user(OPERATOR))
    client = as_user(username)
    headers = {"X-CSRF-Token": client.csrf_token}
    requests = [
        ("GET", "/operator/ca", None, None),
        ("POST", "/operator/ca/identities", {"enrollment_id": "intruder1"}, None),
        ("POST", "/operator/ca/revoke", {"enrollment_id": "doctor7"}, None),
        ("POST", "/operator/ca/crl/propose", {}, None),
        ("GET", "/api/v1/operator/ca/identities", None, None),
        ("GET", "/api/v1/operator/ca/crl", None, None),
        ("POST", "/api/v1/operator/ca/identities", None, {"id": "intruder2"}),
        ("POST", "/api/v1/operator/ca/revoke", None, {"id": "doctor7"}),
        ("POST", "/api/v1/operator/ca/crl/propose", None, {}),
    ]
    for method, path, form, body in requests:
        data = None if form is None else {"csrf_token": client.csrf_token, **form}
        answer = client.request(
            method, path, data=data, json=body, headers=headers, follow_redirects=False
        )
        assert answer.status_code == 403, f"{username}: {method} {path} -> {answer.status_code}"
    assert _ids(as_user(OPERATOR)) == before
    assert _crl(as_user(OPERATOR)) == crl_before


def test_a_forged_request_without_the_csrf_token_changes_nothing(
    as_user: Callable[[str], StaffClient],
) -> None:
    operator = as_user(OPERATOR)
    before = _ids(operator)
    forged = operator.post("/operator/ca/identities", data={"enrollment_id": "forged1"})
    assert forged.status_code == 403
    api = operator.post("/api/v1/operator/ca/revoke", json={"id": "doctor7"})
    assert api.status_code == 403
    assert _ids(operator) == before


MALFORMED = [
    ("a space in the enrollment ID", {"enrollment_id": "dr seven"}, "id"),
    ("a role outside the alliance's", {"enrollment_id": "x1", "role": "superuser"}, "role"),
    ("a type Fabric CA does not know", {"enrollment_id": "x2", "type": "root"}, "type"),
    ("a secret under 12 characters", {"enrollment_id": "x3", "secret": "short"}, "secret"),
    ("max enrolments below -1", {"enrollment_id": "x4", "max_enrollments": "-5"}, "max"),
]


@pytest.mark.parametrize(
    ("form", "field"),
    [(f, fld) for _, f, fld in MALFORMED],
    ids=[f"{what} is a 422 naming the field" for what, _, _ in MALFORMED],
)
def test_malformed_registrations_are_refused_naming_the_field(
    as_user: Callable[[str], StaffClient], form: dict[str, str], field: str
) -> None:
    operator = as_user(OPERATOR)
    before = _ids(operator)
    answer = operator.post_form("/operator/ca/identities", form)
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert field in answer.text  # type: ignore[attr-defined]
    assert "short" not in answer.text  # type: ignore[attr-defined]  # never the value
    assert _ids(operator) == before


def test_malformed_api_requests_are_422(as_user: Callable[[str], StaffClient]) -> None:
    operator = as_user(OPERATOR)
    headers = {"X-CSRF-Token": operator.csrf_token}
    before = _ids(operator)
    for path, body, field in (
        ("/api/v1/operator/ca/identities", {"id": "x5", "admin": True}, "admin"),
        ("/api/v1/operator/ca/revoke", {"serial": "not-hex"}, "serial"),
        ("/api/v1/operator/ca/revoke", {"id": "doctor7", "reason": "because"}, "reason"),
    ):
        answer = operator.post(path, json=body, headers=headers)
        assert answer.status_code == 422, (path, body)
        assert field in answer.json()["message"]
    both = operator.post(
        "/api/v1/operator/ca/revoke", json={"id": "doctor7", "serial": "ab"}, headers=headers
    )
    assert both.status_code == 400
    assert "either" in both.json()["message"]
    assert _ids(operator) == before


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("operator.cityhc", "runs no Fabric CA"),
        ("operator.tertiaryb", "identity enroll admin"),
    ],
    ids=[
        "an organisation without a CA is told how to add one",
        "a CA whose registrar is not enrolled says the command that enrols it",
    ],
)
def test_an_organisation_not_set_up_for_its_ca_is_told_what_to_do(
    as_user: Callable[[str], StaffClient], username: str, message: str
) -> None:
    client = as_user(username)
    page = client.get("/operator/ca")
    assert page.status_code == 400
    assert message in page.text
    api = client.get("/api/v1/operator/ca/identities")
    assert api.status_code == 400
    assert message in api.json()["message"]


def test_a_ca_that_is_down_is_a_503_with_a_clear_message(
    ca_web: CaWeb, as_user: Callable[[str], StaffClient]
) -> None:
    operator = as_user(OPERATOR)
    headers = {"X-CSRF-Token": operator.csrf_token}
    before = _ids(operator)
    ca_web.server.stop()
    try:
        page = operator.get("/operator/ca")
        assert page.status_code == 503
        assert "cannot reach the CA" in page.text
        register = operator.post_form("/operator/ca/identities", {"enrollment_id": "late1"})
        assert register.status_code == 503  # type: ignore[attr-defined]
        api = operator.post("/api/v1/operator/ca/identities", json={"id": "late2"}, headers=headers)
        assert api.status_code == 503
        assert "is it running?" in api.json()["message"]
    finally:
        ca_web.server.start()
    assert _ids(operator) == before
