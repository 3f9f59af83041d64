"""ECDSA P-256 signing and verification in Fabric's canonical form (low-S, DER).

Fabric's BCCSP rejects a message signature whose S exceeds half the curve order (protocol doc
§2.2); OpenSSL accepts both forms, so we check it ourselves and always produce low-S. Pure apart
from `Signer.from_files`, which reads the two PEM files it is given.
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
    """The SHA-256 digest of `data` (Fabric's hash for tx ids, identities and signatures)."""
    return hashlib.sha256(data).digest()


def serialize_identity(msp_id: str, cert_pem: bytes) -> bytes:
    """Fabric's `msp.SerializedIdentity{mspid, id_bytes=cert_pem}` bytes (a tx creator)."""
    message = identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=cert_pem)
    return bytes(message.SerializeToString())


def verify_signature(
    public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes
) -> bool:
    """True only for a valid low-S DER ECDSA-SHA256 signature of `message`; never raises.

    A malformed DER signature, a high-S signature (Fabric: "Invalid S. Must be smaller than half
    the order") and a mismatch are all simply False.
    """
    try:
        r, s = decode_dss_signature(signature)
    except (ValueError, TypeError):
        return False
    if not (0 < r < P256_ORDER and 0 < s <= _HALF_ORDER):
        return False
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Signer:
    """An MSP identity with its private key: signs proposals, transactions and blocks.

    The key never appears in a repr; `serialized_identity` is the creator/endorser bytes Fabric
    puts in headers, computed once.
    """

    msp_id: str
    cert_pem: bytes
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    _serialized: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen + slots: no cached_property, so compute once here.
        object.__setattr__(self, "_serialized", serialize_identity(self.msp_id, self.cert_pem))

    @property
    def serialized_identity(self) -> bytes:
        """`SerializedIdentity{mspid, id_bytes=cert_pem}` as bytes."""
        return self._serialized

    def sign(self, message: bytes) -> bytes:
        """ECDSA-SHA256 over `message` (hashed here), DER-encoded, always low-S."""
        r, s = decode_dss_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())))
        if s > _HALF_ORDER:
            s = P256_ORDER - s  # (r, n - s) is the same signature in canonical form
        return encode_dss_signature(r, s)

    @classmethod
    def from_pem(cls, msp_id: str, cert_pem: bytes, key_pem: bytes) -> Signer:
        """A signer from a PEM certificate and an unencrypted PEM (PKCS8) P-256 key.

        Raises `InvalidArgument` when the key does not parse or is not an ECDSA key.
        """
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"the signing key of {msp_id} is not an unencrypted PEM private key"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument(f"the signing key of {msp_id} must be an ECDSA key")
        return cls(msp_id, cert_pem, key)

    @classmethod
    def from_files(cls, msp_id: str, cert_path: Path, key_path: Path) -> Signer:
        """A signer from a PEM certificate file and a PEM PKCS8 key file (e.g. `priv_sk`)."""
        return cls.from_pem(msp_id, cert_path.read_bytes(), key_path.read_bytes())
