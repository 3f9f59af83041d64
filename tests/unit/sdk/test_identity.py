"""Loading a client's signer and TLS material from Fabric's folder layout."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.conftest import NOW

from medalliance.errors import InvalidArgument, NotFound
from medalliance.identity import OrgSpec, UserSpec, generate_org
from medalliance.sdk import load_user, read_pem, signer_from_files, signer_from_msp
from medalliance.sdk.identity import tls_certificate_hash


@pytest.fixture(scope="module")
def org_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = OrgSpec(
        msp_id="Org1MSP",
        domain="org1.example.com",
        kind="peer",
        nodes=("peer0",),
        users=(UserSpec("User1"),),
    )
    return generate_org(tmp_path_factory.mktemp("crypto"), spec, now=NOW)


def test_a_cryptogen_user_folder_gives_signer_and_tls_files(org_dir: Path) -> None:
    user = org_dir / "users" / "User1@org1.example.com"
    material = load_user(user, "Org1MSP")
    assert material.signer.msp_id == "Org1MSP"
    assert material.tls_root_cert == (user / "tls" / "ca.crt").read_bytes()
    assert material.tls_client_cert == (user / "tls" / "client.crt").read_bytes()
    assert material.tls_client_key == (user / "tls" / "client.key").read_bytes()
    assert b"PRIVATE" not in repr(material).encode()


def test_without_a_tls_folder_the_msp_tls_ca_is_used(org_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "User1"
    shutil.copytree(org_dir / "users" / "User1@org1.example.com" / "msp", user / "msp")
    material = load_user(user, "Org1MSP")
    tls_ca = next((user / "msp" / "tlscacerts").iterdir()).read_bytes()
    assert material.tls_root_cert == tls_ca
    assert (material.tls_client_cert, material.tls_client_key) == (None, None)


def test_signers_from_an_msp_folder_and_from_files_agree(org_dir: Path) -> None:
    msp = org_dir / "users" / "User1@org1.example.com" / "msp"
    from_msp = signer_from_msp(msp, "Org1MSP")
    cert = next((msp / "signcerts").iterdir())
    from_files = signer_from_files("Org1MSP", cert, msp / "keystore" / "priv_sk")
    assert from_msp.serialized_identity == from_files.serialized_identity


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"nothere\.pem"):
        read_pem(tmp_path / "nothere.pem")
    with pytest.raises(NotFound):
        signer_from_msp(tmp_path, "Org1MSP")


def test_a_key_that_is_not_pem_is_refused(tmp_path: Path, org_dir: Path) -> None:
    msp = org_dir / "users" / "User1@org1.example.com" / "msp"
    (tmp_path / "key.pem").write_bytes(b"not a key")
    with pytest.raises(InvalidArgument):
        signer_from_files("Org1MSP", next((msp / "signcerts").iterdir()), tmp_path / "key.pem")


def test_the_tls_certificate_hash_is_sha256_of_the_der(org_dir: Path) -> None:
    pem = (org_dir / "users" / "User1@org1.example.com" / "tls" / "client.crt").read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert tls_certificate_hash(pem) == hashlib.sha256(der).digest()
    with pytest.raises(InvalidArgument):
        tls_certificate_hash(b"not a certificate")
