"""Organisations' encryption keys: loading, rotating, and verifying a recipient's certificate.

docs/privacy.md §4. Each organisation has P-256 encryption key pairs separate from its signing
keys, certified by its CA with key usage keyAgreement only; the layout is cryptogen's
(`msp/enccerts/<key id>.pem`, `enc/keystore/<key id>_sk`). Rotation adds a pair and keeps the
old private keys, so records sealed for an old key stay readable; senders wrap for the newest
valid certificate. Reads and writes key files; the sealing itself is `privacy.envelope`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medalliance.errors import InvalidArgument
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.cryptogen import (
    ENC_CERTS_DIR,
    ENC_KEYSTORE_DIR,
    encryption_key_id,
    write_encryption_key,
)
from medalliance.identity.msp import Msp
from medalliance.privacy.errors import NoEncryptionKey, UntrustedEncryptionKey

KEY_ID_HEX_DIGITS = 16


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key id of an encryption public key: 16 hex digits of SHA-256 over its SPKI DER."""
    return encryption_key_id(public_key)


@dataclass(frozen=True, slots=True)
class RecipientKey:
    """An organisation's encryption public key, to wrap data keys for.

    Raises `InvalidArgument` unless the key is P-256 and `key_id` is its id. Obtain it from a
    verified certificate (`recipient_key`) or from the organisation's own keyring.
    """

    msp_id: str
    key_id: str
    public_key: ec.EllipticCurvePublicKey = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, ec.EllipticCurvePublicKey) or not isinstance(
            self.public_key.curve, ec.SECP256R1
        ):
            raise InvalidArgument(f"the encryption key of {self.msp_id} must be a P-256 key")
        if key_id(self.public_key) != self.key_id:
            raise InvalidArgument(f"key id {self.key_id} of {self.msp_id} is not its key's id")


@dataclass(frozen=True, slots=True)
class EncryptionKeyring:
    """One organisation's encryption keys: every private key by key id, and the current key.

    `private_keys` includes rotated-out keys, so `envelope.open_package` opens old records;
    `current` is the key of the newest certificate, the one others wrap new records for.
    """

    msp_id: str
    current: RecipientKey
    private_keys: Mapping[str, ec.EllipticCurvePrivateKey] = field(repr=False)

    @classmethod
    def load(cls, org_dir: Path, msp_id: str) -> EncryptionKeyring:
        """Read the keyring from an organisation folder (cryptogen layout).

        Raises `NoEncryptionKey` when there is no certificate, or no private key for the newest
        certificate, and `InvalidArgument` when a file does not parse or a key file's name is
        not its key's id.
        """
        private_keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for path in sorted((org_dir / ENC_KEYSTORE_DIR).glob("*_sk")):
            key = _load_private_key(path)
            kid = key_id(key.public_key())
            if path.name != f"{kid}_sk":
                raise InvalidArgument(
                    f"{path} does not hold key {path.name[:-3]}; rename it {kid}_sk"
                )
            private_keys[kid] = key
        certificates = _load_certificates(org_dir / "msp", msp_id)
        if not certificates:
            raise NoEncryptionKey(
                f"{org_dir / ENC_CERTS_DIR} holds no encryption certificate of {msp_id}; "
                "generate the organisation with cryptogen or rotate its encryption key"
            )
        newest = _newest(certificates)
        current = _recipient(msp_id, newest)
        if current.key_id not in private_keys:
            raise NoEncryptionKey(
                f"{org_dir / ENC_KEYSTORE_DIR} lacks the private key {current.key_id} of the "
                f"newest encryption certificate of {msp_id}; restore it from backup"
            )
        return cls(msp_id, current, MappingProxyType(private_keys))


def rotate(org_dir: Path, ca: CertificateAuthority, now: dt.datetime) -> str:
    """Add a new encryption key pair to the organisation, certified by its CA; return its id.

    The old pairs stay (old records remain readable); the new certificate becomes the newest,
    so senders wrap for it from `now` on. Publish the organisation's updated `msp/enccerts/`
    to the alliance. `ca` is the organisation's CA (`load_org_ca`). Raises `InvalidArgument`
    when the CA cannot issue at `now`.
    """
    return write_encryption_key(org_dir, ca, now=now)


def load_org_ca(org_dir: Path) -> CertificateAuthority:
    """The organisation's CA from `<org>/ca/` (its certificate and `priv_sk`).

    Raises `NoEncryptionKey` when either file is missing, `InvalidArgument` when unusable.
    """
    certs = sorted((org_dir / "ca").glob("*-cert.pem"))
    key = org_dir / "ca" / "priv_sk"
    if len(certs) != 1 or not key.is_file():
        raise NoEncryptionKey(f"{org_dir / 'ca'} must hold one *-cert.pem and priv_sk")
    return CertificateAuthority.load(certs[0].read_bytes(), key.read_bytes())


def recipient_key(org_msp_dir: Path, msp_id: str, at: dt.datetime) -> RecipientKey:
    """The verified current encryption key of an organisation, from its public MSP folder.

    Takes the newest certificate in `enccerts/` (by not-valid-before) valid at `at` and checks
    that one of the organisation's CAs (`cacerts/`) issued it with a valid signature, that it
    is not revoked by the MSP's CRLs, that its key usage is keyAgreement (not a signing
    certificate) and that its key is P-256. Raises `NoEncryptionKey` when the folder holds no
    certificate valid at `at`, `UntrustedEncryptionKey` when the newest fails a check, and
    `InvalidArgument` when a file does not parse.
    """
    msp = Msp.from_dir(org_msp_dir, msp_id)
    certificates = _load_certificates(org_msp_dir, msp_id)
    valid = [c for c in certificates if c.not_valid_before_utc <= at <= c.not_valid_after_utc]
    if not valid:
        state = "none is valid at that time (expired or not yet valid)" if certificates else ""
        raise NoEncryptionKey(
            f"{org_msp_dir / 'enccerts'} holds no encryption certificate of {msp_id} valid at "
            f"{at:%Y-%m-%d %H:%M}Z{'; ' + state if state else ''}; ask {msp_id} to rotate its key"
        )
    certificate = _newest(valid)
    public_key = certificate.public_key()
    kid = key_id(public_key) if isinstance(public_key, ec.EllipticCurvePublicKey) else "?"
    if not _issued_by_one_of(certificate, msp.root_certs, at):
        raise UntrustedEncryptionKey(msp_id, kid, f"no CA of {msp_id} issued its certificate")
    if certificate.serial_number in msp.revoked_serials:
        raise UntrustedEncryptionKey(msp_id, kid, "its certificate is revoked")
    if not _is_key_agreement_only(certificate):
        raise UntrustedEncryptionKey(
            msp_id, kid, "its certificate is not for key agreement (a signing certificate?)"
        )
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise UntrustedEncryptionKey(msp_id, kid, "its key is not a P-256 key")
    return RecipientKey(msp_id, kid, public_key)


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidArgument(f"{path} is not a P-256 encryption key")
    return key


def _load_certificates(msp_dir: Path, msp_id: str) -> list[x509.Certificate]:
    certificates = []
    for path in sorted((msp_dir / "enccerts").glob("*.pem")):
        try:
            certificates.append(x509.load_pem_x509_certificate(path.read_bytes()))
        except ValueError as exc:
            raise InvalidArgument(f"{path} of {msp_id} is not a PEM certificate") from exc
    return certificates


def _newest(certificates: list[x509.Certificate]) -> x509.Certificate:
    # Ties (two rotations within one clock-skew window) go to the later expiry, then the larger
    # fingerprint, so every sender picks the same key from the same folder.
    return max(
        certificates,
        key=lambda c: (
            c.not_valid_before_utc,
            c.not_valid_after_utc,
            c.fingerprint(hashes.SHA256()),
        ),
    )


def _recipient(msp_id: str, certificate: x509.Certificate) -> RecipientKey:
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise InvalidArgument(f"the encryption certificate of {msp_id} holds no P-256 key")
    return RecipientKey(msp_id, key_id(public_key), public_key)


def _issued_by_one_of(
    certificate: x509.Certificate, cas: tuple[x509.Certificate, ...], at: dt.datetime
) -> bool:
    for ca in cas:
        if not ca.not_valid_before_utc <= at <= ca.not_valid_after_utc:
            continue
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _is_key_agreement_only(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return usage.key_agreement and not usage.digital_signature and not constraints.ca
