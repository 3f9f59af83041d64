"""Signatures are canonical low-S; certificates are judged by chain, time, revocation and OU."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tests.conftest import NOW, Org, make_org

from medalliance.errors import InvalidIdentity, MalformedMessage
from medalliance.identity.msp import Msp, MspManager
from medalliance.identity.signing import P256_ORDER, verify_signature


def test_signatures_are_low_s_and_high_s_is_refused(org1: Org) -> None:
    signer = org1.signer("alice")
    key = signer.private_key.public_key()
    for i in range(20):
        message = f"message {i}".encode()
        sig = signer.sign(message)
        r, s = decode_dss_signature(sig)
        assert s <= P256_ORDER // 2
        assert verify_signature(key, sig, message)
        assert not verify_signature(key, encode_dss_signature(r, P256_ORDER - s), message)
        assert not verify_signature(key, sig, message + b"!")
    assert not verify_signature(key, b"not der", b"m")


def test_identity_carries_msp_ou_and_alliance_role(org1: Org, msps: MspManager) -> None:
    doctor = org1.signer("doctor", role="doctor")
    identity = msps.deserialize(doctor.serialized_identity, at=NOW)
    assert (identity.msp_id, identity.node_ou, identity.alliance_role, identity.is_admin) == (
        "Org1MSP",
        "client",
        "doctor",
        False,
    )
    assert msps.deserialize(org1.signer("boss", ou="admin").serialized_identity, at=NOW).is_admin


@pytest.mark.parametrize(
    ("at", "message"),
    [
        pytest.param(
            NOW + dt.timedelta(days=400), "expired", id="an expired certificate is refused"
        ),
        pytest.param(
            NOW - dt.timedelta(days=1),
            "not valid before",
            id="a not-yet-valid certificate is refused",
        ),
    ],
)
def test_validity_period(org1: Org, msps: MspManager, at: dt.datetime, message: str) -> None:
    with pytest.raises(InvalidIdentity, match=message):
        msps.deserialize(org1.signer("bob").serialized_identity, at=at)


def test_a_certificate_from_a_foreign_ca_is_refused(msps: MspManager) -> None:
    impostor = make_org("Org1MSP").signer("mallory")  # same MSP id, another CA
    with pytest.raises(InvalidIdentity, match="not issued by a CA of Org1MSP"):
        msps.deserialize(impostor.serialized_identity, at=NOW)


def test_an_unknown_msp_and_garbage_are_refused(msps: MspManager) -> None:
    with pytest.raises(InvalidIdentity, match="unknown MSP"):
        msps.deserialize(make_org("Org9MSP").signer("x").serialized_identity, at=NOW)
    with pytest.raises(MalformedMessage):
        msps.deserialize(b"\xff\xff", at=NOW)


def test_a_revoked_certificate_is_refused(org1: Org) -> None:
    victim = org1.signer("lost-laptop")
    serial = x509.load_pem_x509_certificate(victim.cert_pem).serial_number
    crl = org1.ca.revoke([serial], now=NOW)
    manager = MspManager([Msp("Org1MSP", (org1.ca.certificate,), crls=(crl,))])
    with pytest.raises(InvalidIdentity, match="revoked"):
        manager.deserialize(victim.serialized_identity, at=NOW)
    assert manager.deserialize(org1.signer("other").serialized_identity, at=NOW).msp_id == "Org1MSP"


def test_a_crl_signed_by_another_ca_is_ignored(org1: Org) -> None:
    victim = org1.signer("victim")
    serial = x509.load_pem_x509_certificate(victim.cert_pem).serial_number
    forged = make_org("Org1MSP").ca.revoke([serial], now=NOW)
    manager = MspManager([Msp("Org1MSP", (org1.ca.certificate,), crls=(forged,))])
    assert manager.deserialize(victim.serialized_identity, at=NOW).msp_id == "Org1MSP"


def test_msp_config_round_trips_through_fabric_protobuf(org1: Org) -> None:
    crl = org1.ca.revoke([7], now=NOW)
    msp = Msp("Org1MSP", (org1.ca.certificate,), crls=(crl,))
    back = Msp.from_proto_bytes(msp.to_proto_bytes())
    assert (back.msp_id, back.root_certs, back.crls, back.revoked_serials) == (
        "Org1MSP",
        msp.root_certs,
        (crl,),
        frozenset({7}),
    )
