"""Crypto material lands in Fabric's cryptogen layout and loads back as working identities."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from tests.conftest import NOW

from medalliance.errors import NotFound, PreconditionFailed
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.cryptogen import OrgSpec, UserSpec, generate_org, load_signer
from medalliance.identity.msp import Msp, MspManager


def test_layout_and_identities(tmp_path: Path) -> None:
    spec = OrgSpec(
        "Org1MSP",
        "org1.example.com",
        "peer",
        peers=("peer0",),
        users=(UserSpec("Admin", "admin"), UserSpec("User1", "client", "doctor")),
    )
    root = generate_org(tmp_path, spec, now=NOW)
    assert root == tmp_path / "peerOrganizations" / "org1.example.com"
    for rel in (
        "ca/ca.org1.example.com-cert.pem",
        "tlsca/priv_sk",
        "msp/config.yaml",
        "peers/peer0.org1.example.com/tls/server.crt",
        "peers/peer0.org1.example.com/msp/keystore/priv_sk",
        "users/User1@org1.example.com/msp/signcerts/User1@org1.example.com-cert.pem",
        "users/Admin@org1.example.com/tls/client.key",
    ):
        assert (root / rel).is_file(), rel
    assert stat.S_IMODE((root / "ca/priv_sk").stat().st_mode) == 0o600
    msps = MspManager([Msp.from_dir(root / "msp", "Org1MSP")])
    user = load_signer(root / "users/User1@org1.example.com/msp", "Org1MSP")
    identity = msps.deserialize(user.serialized_identity, at=NOW)
    assert (identity.node_ou, identity.alliance_role) == ("client", "doctor")
    assert identity.verify(user.sign(b"hello"), b"hello")
    peer = load_signer(root / "peers/peer0.org1.example.com/msp", "Org1MSP")
    assert msps.deserialize(peer.serialized_identity, at=NOW).node_ou == "peer"
    with pytest.raises(PreconditionFailed, match="refusing to overwrite"):
        generate_org(tmp_path, spec, now=NOW)


ORG1 = OrgSpec(
    "Org1MSP",
    "org1.example.com",
    "peer",
    nodes=("peer0", "peer1"),
    users=(UserSpec("Admin", "admin"), UserSpec("User1", "client", "doctor")),
)


@pytest.fixture(scope="module")
def org1_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_org(tmp_path_factory.mktemp("crypto"), ORG1, now=NOW)


def test_the_org_msp_is_cryptogens(org1_dir: Path) -> None:
    msp = org1_dir / "msp"
    assert sorted(p.name for p in msp.iterdir()) == [
        "admincerts",
        "cacerts",
        "config.yaml",
        "enccerts",
        "tlscacerts",
    ]
    assert list((msp / "admincerts").iterdir()) == []  # node OUs make admins, not admincerts
    assert (msp / "cacerts/ca.org1.example.com-cert.pem").read_bytes() == (
        org1_dir / "ca/ca.org1.example.com-cert.pem"
    ).read_bytes()
    assert (msp / "tlscacerts/tlsca.org1.example.com-cert.pem").is_file()
    config = yaml.safe_load((msp / "config.yaml").read_text())
    assert config["NodeOUs"]["Enable"] is True
    for key, ou in (
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ):
        assert config["NodeOUs"][key] == {
            "Certificate": "cacerts/ca.org1.example.com-cert.pem",
            "OrganizationalUnitIdentifier": ou,
        }


def test_every_private_key_is_owner_only(org1_dir: Path) -> None:
    keys = [p for p in org1_dir.rglob("*") if p.name in ("priv_sk", "server.key", "client.key")]
    assert len(keys) == 2 + 2 * 2 + 2 * 2  # CAs, nodes (msp + tls), users (msp + tls)
    assert {stat.S_IMODE(p.stat().st_mode) for p in keys} == {0o600}


def test_a_peers_tls_certificate_serves_its_names(org1_dir: Path) -> None:
    tls = org1_dir / "peers/peer1.org1.example.com/tls"
    cert = x509.load_pem_x509_certificate((tls / "server.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "peer1.org1.example.com",
        "peer1",
        "localhost",
    ]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    tlsca = x509.load_pem_x509_certificate((tls / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(tlsca)


def test_a_users_tls_client_certificate_is_issued_by_the_tls_ca(org1_dir: Path) -> None:
    tls = org1_dir / "users/User1@org1.example.com/tls"
    cert = x509.load_pem_x509_certificate((tls / "client.crt").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((tls / "ca.crt").read_bytes()))
    assert (tls / "client.key").is_file()


@pytest.mark.parametrize(
    ("who", "ou", "admin", "role"),
    [
        pytest.param("users/Admin@org1.example.com", "admin", True, None, id="Admin is an admin"),
        pytest.param(
            "users/User1@org1.example.com", "client", False, "doctor", id="User1 is a doctor"
        ),
        pytest.param("peers/peer0.org1.example.com", "peer", False, None, id="peer0 is a peer"),
    ],
)
def test_identities_load_and_sign_as_the_msp_expects(
    org1_dir: Path, who: str, ou: str, admin: bool, role: str | None
) -> None:
    msps = MspManager([Msp.from_dir(org1_dir / "msp", "Org1MSP")])
    signer = load_signer(org1_dir / who / "msp", "Org1MSP")
    identity = msps.deserialize(signer.serialized_identity, at=NOW)
    assert (identity.node_ou, identity.is_admin, identity.alliance_role) == (ou, admin, role)
    assert identity.verify(signer.sign(b"referral"), b"referral")


def test_an_orderer_org_puts_nodes_under_orderers(tmp_path: Path) -> None:
    spec = OrgSpec("OrdererMSP", "example.com", "orderer", nodes=("orderer0",), users=())
    root = generate_org(tmp_path, spec, now=NOW)
    assert root == tmp_path / "ordererOrganizations" / "example.com"
    node = root / "orderers/orderer0.example.com"
    assert (node / "msp/signcerts/orderer0.example.com-cert.pem").is_file()
    assert (node / "tls/server.crt").is_file()
    msps = MspManager([Msp.from_dir(root / "msp", "OrdererMSP")])
    signer = load_signer(node / "msp", "OrdererMSP")
    assert msps.deserialize(signer.serialized_identity, at=NOW).node_ou == "orderer"


def test_rerunning_refuses_and_keeps_the_keys(tmp_path: Path) -> None:
    spec = OrgSpec("Org2MSP", "org2.example.com", "peer", nodes=("peer0",))
    root = generate_org(tmp_path, spec, now=NOW)
    key = (root / "ca/priv_sk").read_bytes()
    with pytest.raises(PreconditionFailed, match="refusing to overwrite"):
        generate_org(tmp_path, spec, now=NOW)
    assert (root / "ca/priv_sk").read_bytes() == key
    assert [p.name for p in root.parent.iterdir()] == ["org2.example.com"]  # no leftovers


def test_a_failed_run_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # Fail after the CAs are written, while issuing the first node certificate.
    monkeypatch.setattr(CertificateAuthority, "issue", fail)
    spec = OrgSpec("Org3MSP", "org3.example.com", "peer", nodes=("peer0",))
    with pytest.raises(OSError, match="disk full"):
        generate_org(tmp_path, spec, now=NOW)
    assert list((tmp_path / "peerOrganizations").iterdir()) == []


def test_load_signer_without_material_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_signer(tmp_path, "Org1MSP")
