"""ECDSA P-256 signing and verification in Fabric's canonical form (low-S, DER).

Fabric rejects a signature whose S exceeds half the curve order (protocol doc §2.2); OpenSSL
accepts both forms, so we check it ourselves and always produce low-S.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2

from medalliance.errors import InvalidArgument

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = P256_ORDER // 2


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def verify_signature(
    public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes
) -> bool:
    """True only for a valid low-S DER ECDSA-SHA256 signature of `message`; never raises."""
    try:
        _, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if s > _HALF_ORDER:
        return False
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Signer:
    """An MSP identity with its private key: signs proposals, transactions and blocks."""

    msp_id: str
    cert_pem: bytes
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    serialized_identity: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        serialized = identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.cert_pem)
        object.__setattr__(self, "serialized_identity", bytes(serialized.SerializeToString()))

    def sign(self, message: bytes) -> bytes:
        """ECDSA-SHA256 over `message`, DER-encoded, low-S."""
        r, s = decode_dss_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())))
        if s > _HALF_ORDER:
            s = P256_ORDER - s
        return encode_dss_signature(r, s)

    @classmethod
    def from_pem(cls, msp_id: str, cert_pem: bytes, key_pem: bytes) -> Signer:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument("the signing key must be an ECDSA key")
        return cls(msp_id, cert_pem, key)

    @classmethod
    def from_files(cls, msp_id: str, cert_path: Path, key_path: Path) -> Signer:
        return cls.from_pem(msp_id, cert_path.read_bytes(), key_path.read_bytes())
