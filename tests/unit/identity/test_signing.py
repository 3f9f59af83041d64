"""Message signatures are canonical low-S DER; anything else is refused without raising."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org

from medalliance.errors import InvalidArgument
from medalliance.identity.signing import (
    P256_ORDER,
    Signer,
    _length,
    _tlv,
    sanitize_certificate_der,
    sha256,
    verify_digest,
    verify_signature,
)


def high_s(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return encode_dss_signature(r, P256_ORDER - s)


def test_every_signature_is_low_s_and_verifies(org1: Org) -> None:
    signer = org1.signer("alice")
    key = signer.private_key.public_key()
    for i in range(64):  # about half of raw ECDSA signatures are high-S: 64 tries hit both
        message = f"message {i}".encode()
        signature = signer.sign(message)
        assert decode_dss_signature(signature)[1] <= P256_ORDER // 2
        assert verify_signature(key, signature, message)


def test_a_high_s_signature_is_refused_although_openssl_accepts_it(org1: Org) -> None:
    signer = org1.signer("alice")
    key = signer.private_key.public_key()
    signature = high_s(signer.sign(b"m"))
    key.verify(signature, b"m", ec.ECDSA(hashes.SHA256()))  # mathematically valid
    assert not verify_signature(key, signature, b"m")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        pytest.param(lambda sig: sig, b"m!", id="a tampered message fails"),
        pytest.param(lambda sig: b"", b"m", id="an empty signature fails"),
        pytest.param(lambda sig: b"not der", b"m", id="a non-DER signature fails"),
        pytest.param(lambda sig: sig[:-3], b"m", id="a truncated signature fails"),
        pytest.param(lambda sig: encode_dss_signature(0, 1), b"m", id="r = 0 fails"),
        pytest.param(lambda sig: encode_dss_signature(1, 0), b"m", id="s = 0 fails"),
    ],
)
def test_bad_signatures_are_false_not_errors(
    org1: Org, tamper: Callable[[bytes], bytes], message: bytes
) -> None:
    signer = org1.signer("alice")
    signature = tamper(signer.sign(b"m"))
    assert not verify_signature(signer.private_key.public_key(), signature, message)


def test_another_keys_signature_fails(org1: Org) -> None:
    alice, bob = org1.signer("alice"), org1.signer("bob")
    assert not verify_signature(alice.private_key.public_key(), bob.sign(b"m"), b"m")


@given(st.binary(max_size=80))
def test_random_signature_bytes_never_raise(signature: bytes) -> None:
    assert not verify_signature(_KEY.public_key(), signature, b"message")


_KEY = ec.generate_private_key(ec.SECP256R1())


def test_serialized_identity_is_fabrics_serialized_identity(org1: Org) -> None:
    signer = org1.signer("alice")
    parsed = identities_pb2.SerializedIdentity()
    parsed.ParseFromString(signer.serialized_identity)
    assert (parsed.mspid, bytes(parsed.id_bytes)) == ("Org1MSP", signer.cert_pem)


def test_the_private_key_never_appears_in_repr(org1: Org) -> None:
    signer = org1.signer("alice")
    key_pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert "private_key" not in repr(signer)
    assert key_pem.decode() not in repr(signer)


def test_from_files_reads_pem_cert_and_pkcs8_key(org1: Org, tmp_path: Path) -> None:
    issued = org1.ca.issue("files@Org1MSP", node_ou="client", now=NOW)
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem)
    (tmp_path / "priv_sk").write_bytes(issued.key_pem)
    signer = Signer.from_files("Org1MSP", tmp_path / "cert.pem", tmp_path / "priv_sk")
    cert_key = x509.load_pem_x509_certificate(issued.cert_pem).public_key()
    assert isinstance(cert_key, ec.EllipticCurvePublicKey)
    assert verify_signature(cert_key, signer.sign(b"hello"), b"hello")


@pytest.mark.parametrize(
    "which",
    [
        pytest.param("garbage key", id="a key that is not PEM is refused"),
        pytest.param("other key", id="a key that does not match the certificate is refused"),
    ],
)
def test_from_pem_refuses_unusable_keys(org1: Org, which: str) -> None:
    issued = org1.ca.issue("x@Org1MSP", node_ou="client", now=NOW)
    other = org1.ca.issue("y@Org1MSP", node_ou="client", now=NOW)
    key_pem = b"-----BEGIN NOTHING-----" if which == "garbage key" else other.key_pem
    with pytest.raises(InvalidArgument):
        Signer.from_pem("Org1MSP", issued.cert_pem, key_pem)


def test_sanitizing_a_high_s_certificate_gives_the_low_s_encoding(org1: Org) -> None:
    cert = org1.ca.issue("c@Org1MSP", node_ou="client", now=NOW).certificate
    der = cert.public_bytes(serialization.Encoding.DER)
    ca_key = org1.ca.certificate.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    flipped = with_signature(der, high_s(cert.signature))
    low = with_signature(der, encode_dss_signature(*_low(cert.signature)))
    assert sanitize_certificate_der(flipped, ca_key) == low
    assert sanitize_certificate_der(low, ca_key) == low


def test_sha256_is_sha256() -> None:
    assert sha256(b"abc").hex().startswith("ba7816bf")


def with_signature(der: bytes, signature: bytes) -> bytes:
    """`der` (a certificate) with another ECDSA signature value, re-encoded."""
    _, start, _ = _tlv(der, 0)
    _, _, tbs_end = _tlv(der, start)
    _, _, alg_end = _tlv(der, tbs_end)
    bits = b"\x03" + _length(len(signature) + 1) + b"\x00" + signature
    body = der[start:alg_end] + bits
    return b"\x30" + _length(len(body)) + body


def _low(signature: bytes) -> tuple[int, int]:
    r, s = decode_dss_signature(signature)
    return r, min(s, P256_ORDER - s)


def test_a_digest_verifies_exactly_as_its_message(org1: Org) -> None:
    """`verify_digest` is the same check given the message's SHA-256: another message's digest,
    a digest of the wrong length or a high-S signature fail, without raising."""
    signer = org1.signer("alice")
    key = signer.private_key.public_key()
    signature = signer.sign(b"m")
    assert verify_digest(key, signature, sha256(b"m"))
    assert not verify_digest(key, signature, sha256(b"m!"))
    assert not verify_digest(key, signature, sha256(b"m")[:31])
    assert not verify_digest(key, signature, b"m")
    assert not verify_digest(key, high_s(signature), sha256(b"m"))
