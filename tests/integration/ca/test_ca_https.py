"""A hospital's Fabric CA over real HTTPS, signing with the CA `network init` made: a user it
enrols transacts on the embedded alliance and the contract sees the role the CA put in the
certificate; a revoked user's serial is in the CA's CRL."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from tests.networks import free_ports, wait_until

from medalliance.app.org_ca import enrolled_msp_dir
from medalliance.ca import CaStore, FabricCa
from medalliance.ca.client import CaClient, write_msp
from medalliance.ca.server import create_ca_app
from medalliance.database_url import parse_database_url
from medalliance.errors import ContractError, NotFound, PermissionDenied
from medalliance.identity.ca import CertificateAuthority
from medalliance.node.embedded import EmbeddedNetwork

ORG = "HospCMSP"
PATIENT = "0123456789abcdef0123456789abcdef"


def _load(folder: Path) -> CertificateAuthority:
    (cert,) = folder.glob("*-cert.pem")
    return CertificateAuthority.load(cert.read_bytes(), (folder / "priv_sk").read_bytes())


@pytest.fixture
def ca_url(network: EmbeddedNetwork, tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """HospC's CA serving HTTPS on a free loopback port, with a TLS certificate from its TLS CA."""
    root = network.layout.org_dir(ORG)
    tlsca = _load(root / "tlsca")
    tls = tlsca.issue(
        "ca.hospc.example.com",
        node_ou=None,
        now=dt.datetime.now(dt.UTC),
        sans=("localhost", "127.0.0.1"),
        server_auth=True,
    )
    (tmp_path / "tls.crt").write_bytes(tls.cert_pem)
    (tmp_path / "tls.key").write_bytes(tls.key_pem)
    store = CaStore(parse_database_url(str(tmp_path / "ca.db")), "ca-hospc")
    ca = FabricCa("ca-hospc", _load(root / "ca"), store)
    ca.bootstrap("admin", "adminpw")
    (port,) = free_ports(1)
    server = uvicorn.Server(
        uvicorn.Config(
            create_ca_app(ca),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ssl_certfile=str(tmp_path / "tls.crt"),
            ssl_keyfile=str(tmp_path / "tls.key"),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the CA server listens", timeout_s=30)
        yield f"https://localhost:{port}", tlsca.cert_pem
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        ca.close()


def test_an_enrolled_user_transacts_with_the_role_the_ca_gave_it(
    network: EmbeddedNetwork, ca_url: tuple[str, bytes]
) -> None:
    url, tls_ca = ca_url
    client = CaClient(url, tls_ca_pem=tls_ca, ca_name="ca-hospc")
    admin = client.enroll("admin", "adminpw")
    secrets = {}
    for user, role in (("clerk9", "clerk"), ("aud9", "auditor")):
        secrets[user] = client.register(admin, user, role=role)
        enrolled = client.enroll(user, secrets[user])
        write_msp(enrolled, enrolled_msp_dir(network.layout, ORG, user), "ca")

    committed = network.client(ORG, "clerk9").submit(
        "alliance", "visit", "RegisterVisit", "V-CA-1", PATIENT, ORG
    )
    assert committed.valid
    record = json.loads(
        network.client(ORG, "clerk9").evaluate("alliance", "visit", "GetVisit", "V-CA-1")
    )
    assert record["registeredBy"] == ORG

    # the same CA's auditor is refused by the contract for its role, and nothing is written
    with pytest.raises(ContractError, match="caller has auditor"):
        network.client(ORG, "aud9").submit(
            "alliance", "visit", "RegisterVisit", "V-CA-2", PATIENT, ORG
        )
    with pytest.raises(ContractError, match="V-CA-2"):
        network.client(ORG, "clerk9").evaluate("alliance", "visit", "GetVisit", "V-CA-2")

    # revoked: in the CA's CRL, and refused by the CA from then on
    clerk_serial = x509.load_pem_x509_certificate(
        (enrolled_msp_dir(network.layout, ORG, "clerk9") / "signcerts" / "cert.pem").read_bytes()
    ).serial_number
    client.revoke(admin, enrollment_id="clerk9", reason="keycompromise")
    crl = x509.load_pem_x509_crl(client.gencrl(admin))
    assert crl.get_revoked_certificate_by_serial_number(clerk_serial) is not None
    assert crl.is_signature_valid(
        _load(network.layout.org_dir(ORG) / "ca").certificate.public_key()
    )  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="revoked"):
        client.enroll("clerk9", secrets["clerk9"])
    with pytest.raises(NotFound):
        client.identity(admin, "nobody")
