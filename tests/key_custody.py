"""Key custody of a split set-up (docs/deployment.md): no organisation's folder holds another
organisation's private key. Shared by the loopback e2e test and the namespace host suite."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def assert_no_folder_holds_another_organisations_key(
    folders: Mapping[str, Path], domains: Mapping[str, str]
) -> None:
    """Every private key in an organisation's folder belongs to a certificate of that
    organisation (matched by public key; `domains`: organisation -> its certificates' subject
    O), and every folder holds keys of its own."""
    certificates: dict[bytes, set[str]] = {}  # public key DER -> organisations (subject O)
    keys: dict[str, list[ec.EllipticCurvePublicKey]] = {org: [] for org in folders}
    for org, folder in folders.items():
        for path in folder.rglob("*"):
            if not path.is_file() or path.suffix == ".gz":
                continue
            data = path.read_bytes()
            if b"PRIVATE KEY-----" in data:
                key = serialization.load_pem_private_key(data, password=None)
                assert isinstance(key, ec.EllipticCurvePrivateKey)
                keys[org].append(key.public_key())
            if b"BEGIN CERTIFICATE" in data:
                with contextlib.suppress(ValueError):
                    for cert in x509.load_pem_x509_certificates(data):
                        owner = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
                        certificates.setdefault(_der(cert.public_key()), set()).update(
                            str(o.value) for o in owner
                        )
    for org, public_keys in keys.items():
        assert public_keys, f"{org} holds no key of its own"
        for public_key in public_keys:
            owners = certificates.get(_der(public_key))
            assert owners == {domains[org]}, f"{org}'s folder holds a key certified for {owners}"


def _der(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
