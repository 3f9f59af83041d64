"""Encryption keys: cryptogen's first pair, the keyring, rotation, and verified recipient keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.conftest import NOW

from medalliance.errors import InvalidArgument
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.cryptogen import OrgSpec, generate_org
from medalliance.privacy.envelope import open_package, seal
from medalliance.privacy.errors import NoEncryptionKey, UntrustedEncryptionKey
from medalliance.privacy.keys import (
    EncryptionKeyring,
    RecipientKey,
    key_id,
    load_org_ca,
    recipient_key,
    rotate,
)

MSP_ID = "HospAMSP"
DAY = dt.timedelta(days=1)


def new_org(base: Path) -> Path:
    return generate_org(base, OrgSpec(MSP_ID, "hospa.example.com", "peer"), now=NOW)


def test_key_id_is_a_prefix_of_the_spki_hash() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id(public) == hashlib.sha256(der).hexdigest()[:16]


def test_cryptogen_writes_a_certified_encryption_pair(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    [cert_path] = (org / "msp/enccerts").iterdir()
    [key_path] = (org / "enc/keystore").iterdir()
    kid = cert_path.name.removesuffix(".pem")
    assert key_path.name == f"{kid}_sk"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644  # public: it travels with the MSP
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(next((org / "msp/cacerts").iterdir()).read_bytes())
    cert.verify_directly_issued_by(ca)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_agreement, usage.digital_signature) == (True, False)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        "enc.hospa.example.com"
    )
    private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert key_id(private.public_key()) == kid
    assert not list(org.rglob("*.partial"))


def test_the_keyring_and_the_verified_recipient_key_agree(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    keyring = EncryptionKeyring.load(org, MSP_ID)
    recipient = recipient_key(org / "msp", MSP_ID, at=NOW)
    assert recipient == keyring.current
    assert list(keyring.private_keys) == [recipient.key_id]
    assert "PRIVATE" not in repr(keyring)
    assert "private_keys" not in repr(keyring)
    package = seal(b"EMR", record_id="R-1", version=1, recipients=[recipient])
    assert open_package(package, MSP_ID, keyring.private_keys) == b"EMR"


def test_rotation_keeps_old_records_readable_and_new_seals_use_the_new_key(
    tmp_path: Path,
) -> None:
    org = new_org(tmp_path)
    old = recipient_key(org / "msp", MSP_ID, at=NOW)
    old_package = seal(b"before rotation", record_id="R-1", version=1, recipients=[old])

    new_id = rotate(org, load_org_ca(org), now=NOW + DAY)

    assert new_id != old.key_id
    keyring = EncryptionKeyring.load(org, MSP_ID)
    assert keyring.current.key_id == new_id
    assert set(keyring.private_keys) == {old.key_id, new_id}
    assert open_package(old_package, MSP_ID, keyring.private_keys) == b"before rotation"
    new = recipient_key(org / "msp", MSP_ID, at=NOW + 2 * DAY)
    assert new.key_id == new_id
    new_package = seal(b"after rotation", record_id="R-1", version=2, recipients=[new])
    assert [w.key_id for w in new_package.wrapped] == [new_id]
    assert open_package(new_package, MSP_ID, keyring.private_keys) == b"after rotation"
    key_file = org / "enc/keystore" / f"{new_id}_sk"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def _from_another_ca(org: Path) -> bytes:
    rogue = CertificateAuthority.create("ca.hospa.example.com", "hospa.example.com", now=NOW)
    return rogue.issue("enc.rogue", node_ou=None, key_agreement=True, now=NOW + DAY).cert_pem


def _signing_certificate(org: Path) -> bytes:
    return load_org_ca(org).issue("peer9", node_ou="peer", now=NOW + DAY).cert_pem


def _with_a_broken_signature(org: Path) -> bytes:
    issued = load_org_ca(org).issue("enc.x", node_ou=None, key_agreement=True, now=NOW + DAY)
    der = bytearray(issued.certificate.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature's s
    cert = x509.load_der_x509_certificate(bytes(der))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("newest", "reason"),
    [
        pytest.param(_from_another_ca, "no CA of HospAMSP issued", id="a cert from another CA"),
        pytest.param(_with_a_broken_signature, "no CA of HospAMSP", id="a forged signature"),
        pytest.param(
            _signing_certificate, "its certificate is not for key agreement", id="a signing cert"
        ),
    ],
)
def test_recipient_key_refuses_an_untrusted_newest_certificate(
    tmp_path: Path, newest: Callable[[Path], bytes], reason: str
) -> None:
    org = new_org(tmp_path)
    (org / "msp/enccerts/zz-newest.pem").write_bytes(newest(org))
    with pytest.raises(
        UntrustedEncryptionKey, match=f"refusing encryption key .* of {MSP_ID}: {reason}"
    ):
        recipient_key(org / "msp", MSP_ID, at=NOW + 2 * DAY)


def test_recipient_key_refuses_an_expired_certificate(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    assert recipient_key(org / "msp", MSP_ID, at=NOW + 364 * DAY)
    with pytest.raises(NoEncryptionKey, match="expired or not yet valid"):
        recipient_key(org / "msp", MSP_ID, at=NOW + 366 * DAY)


def test_recipient_key_refuses_a_revoked_certificate(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    [cert_path] = (org / "msp/enccerts").iterdir()
    serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    crl = load_org_ca(org).revoke([serial], now=NOW + DAY)
    (org / "msp/crls").mkdir()
    (org / "msp/crls/crl.pem").write_bytes(crl)
    with pytest.raises(UntrustedEncryptionKey, match="revoked"):
        recipient_key(org / "msp", MSP_ID, at=NOW + 2 * DAY)


def test_recipient_key_without_certificates_is_not_found(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    for path in (org / "msp/enccerts").iterdir():
        path.unlink()
    with pytest.raises(NoEncryptionKey, match="no encryption certificate of HospAMSP"):
        recipient_key(org / "msp", MSP_ID, at=NOW)
    with pytest.raises(NoEncryptionKey):
        EncryptionKeyring.load(org, MSP_ID)


def test_the_keyring_needs_the_newest_private_key(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    new_id = rotate(org, load_org_ca(org), now=NOW + DAY)
    (org / "enc/keystore" / f"{new_id}_sk").unlink()
    with pytest.raises(NoEncryptionKey, match=f"lacks the private key {new_id}"):
        EncryptionKeyring.load(org, MSP_ID)


def test_the_keyring_refuses_a_key_file_under_another_id(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    [key_path] = (org / "enc/keystore").iterdir()
    key_path.rename(key_path.with_name("0123456789abcdef_sk"))
    with pytest.raises(InvalidArgument, match="rename it"):
        EncryptionKeyring.load(org, MSP_ID)


def test_a_recipient_key_must_match_its_id_and_curve() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(InvalidArgument, match="is not its key's id"):
        RecipientKey("OrgMSP", "0" * 16, public)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(InvalidArgument, match="P-256"):
        RecipientKey("OrgMSP", key_id(p384), p384)
