"""ECDSA signing and verification in Fabric's canonical form (low-S, DER).

Fabric rejects a message signature whose S exceeds half the curve order (protocol doc §2.2);
OpenSSL accepts both forms, so we check it ourselves and always produce low-S. Certificates are
different: Fabric *normalises* a CA's high-S certificate signature ("sanitizeCert") instead of
rejecting it, so two encodings of one certificate are one identity; `sanitize_certificate_der`
does that normalisation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2

from medalliance.errors import InvalidArgument

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)
_ORDERS = {"secp256r1": P256_ORDER, "secp384r1": P384_ORDER}


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of `data` (Fabric's hash for tx ids, identities and signatures)."""
    return hashlib.sha256(data).digest()


def serialize_identity(msp_id: str, cert_pem: bytes) -> bytes:
    """Fabric's `msp.SerializedIdentity{mspid, id_bytes=cert_pem}` bytes (a creator/endorser)."""
    message = identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=cert_pem)
    return bytes(message.SerializeToString())


def curve_order(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> int | None:
    """The group order of the key's curve, for the curves Fabric's MSPs use (P-256, P-384)."""
    return _ORDERS.get(key.curve.name)


def to_low_s(signature: bytes, order: int) -> bytes:
    """The same DER ECDSA signature with S replaced by order − S when S > order/2.

    Raises `ValueError` when `signature` is not DER.
    """
    r, s = decode_dss_signature(signature)
    if s > order // 2:
        return encode_dss_signature(r, order - s)
    return signature


# Immutable; built once, not per signature (≈ 5 % of a verification's time in Python).
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


# The same verification given the message's SHA-256, for callers that hash it anyway.
_ECDSA_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


def verify_signature(
    public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes
) -> bool:
    """True only for a valid low-S DER ECDSA-SHA256 signature of `message`; never raises."""
    return verify_digest(public_key, signature, sha256(message))


def verify_digest(public_key: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> bool:
    """`verify_signature` of the message whose SHA-256 is `digest` (the memory of verified
    signatures hashes each message for its key: OpenSSL then need not hash it a second time)."""
    order = curve_order(public_key)
    if order is None:
        return False
    try:
        _, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if not 0 < s <= order // 2:  # Fabric: "Invalid S. Must be smaller than half the order"
        return False
    try:
        public_key.verify(signature, digest, _ECDSA_PREHASHED)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Signer:
    """An MSP identity with its private key: signs proposals, transactions and blocks.

    `serialized_identity` is the `msp.SerializedIdentity{mspid, id_bytes=cert_pem}` bytes, computed
    once: every signed message carries it, and verifiers hash the bytes as sent.
    """

    msp_id: str
    cert_pem: bytes
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    serialized_identity: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if curve_order(self.private_key) is None:
            raise InvalidArgument("signing keys must be ECDSA on P-256 or P-384")
        serialized = serialize_identity(self.msp_id, self.cert_pem)
        object.__setattr__(self, "serialized_identity", serialized)

    def sign(self, message: bytes) -> bytes:
        """ECDSA-SHA256 over `message`, DER-encoded, always low-S."""
        order = curve_order(self.private_key)
        assert order is not None  # checked in __post_init__
        return to_low_s(self.private_key.sign(message, _ECDSA_SHA256), order)

    @classmethod
    def from_pem(cls, msp_id: str, cert_pem: bytes, key_pem: bytes) -> Signer:
        """A signer from a PEM certificate and its unencrypted PEM (PKCS8 or SEC1) private key.

        Raises `InvalidArgument` when either does not parse or the key does not match the cert.
        """
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            cert = x509.load_pem_x509_certificate(cert_pem)
            cert_key = cert.public_key()
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"the certificate or key of a {msp_id} signer is not valid PEM"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument("the signing key must be an ECDSA key")
        if not isinstance(cert_key, ec.EllipticCurvePublicKey) or cert_key.public_numbers() != (
            key.public_key().public_numbers()
        ):
            raise InvalidArgument(
                f"the signing key of a {msp_id} signer does not match its certificate"
            )
        return cls(msp_id, cert_pem, key)

    @classmethod
    def from_files(cls, msp_id: str, cert_path: Path, key_path: Path) -> Signer:
        return cls.from_pem(msp_id, cert_path.read_bytes(), key_path.read_bytes())


def sanitize_certificate_der(der: bytes, issuer_key: ec.EllipticCurvePublicKey) -> bytes:
    """`der` with its ECDSA signature in low-S form, re-encoded as Fabric's sanitizeCert does.

    The tbsCertificate and algorithm are kept byte for byte; only the signature BIT STRING
    changes, and only when S is high. Raises `ValueError` on malformed DER.
    """
    order = curve_order(issuer_key)
    if order is None:
        return der
    tag, start, end = _tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("a certificate is one DER SEQUENCE")
    _, _, tbs_end = _tlv(der, start)
    _, _, alg_end = _tlv(der, tbs_end)
    sig_tag, sig_start, sig_end = _tlv(der, alg_end)
    if sig_tag != 0x03 or sig_end != end or der[sig_start : sig_start + 1] != b"\x00":
        raise ValueError("the certificate signature is not a DER BIT STRING")
    signature = der[sig_start + 1 : sig_end]
    low = to_low_s(signature, order)
    if low == signature:
        return der
    bits = b"\x03" + _length(len(low) + 1) + b"\x00" + low
    body = der[start:alg_end] + bits
    return b"\x30" + _length(len(body)) + body


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
