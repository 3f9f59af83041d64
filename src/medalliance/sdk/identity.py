"""Loading a client's identity, signing key and TLS material from files.

Works on Fabric's `cryptogen` / fabric-ca folder layout, which `medalliance.identity.cryptogen`
also writes: a user's `msp/` holds `signcerts/` and `keystore/`, its `tls/` folder the TLS CA
(`ca.crt`) and, for mutual TLS, `client.crt` and `client.key`. Files are only read here; keys
stay in `repr=False` fields so no log or traceback prints them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from medalliance.errors import InvalidArgument, NotFound
from medalliance.identity import Signer, load_signer


@dataclass(frozen=True, slots=True)
class ClientMaterial:
    """Everything `connect()` needs for one user: the signer and the TLS files, when present."""

    signer: Signer
    tls_root_cert: bytes | None = field(default=None, repr=False)
    tls_client_cert: bytes | None = field(default=None, repr=False)
    tls_client_key: bytes | None = field(default=None, repr=False)


def signer_from_msp(msp_dir: Path | str, msp_id: str) -> Signer:
    """The signer of an MSP folder (its signcerts/ certificate and keystore/ key).

    Raises `NotFound` when either is missing and `InvalidArgument` when they do not parse.
    """
    return load_signer(Path(msp_dir), msp_id)


def signer_from_files(msp_id: str, cert_path: Path | str, key_path: Path | str) -> Signer:
    """A signer from a PEM certificate file and its unencrypted PEM private key file.

    Raises `NotFound` for a missing file and `InvalidArgument` for a bad or mismatched pair.
    """
    return Signer.from_pem(msp_id, read_pem(cert_path), read_pem(key_path))


def load_user(user_dir: Path | str, msp_id: str) -> ClientMaterial:
    """A cryptogen user folder (`users/User1@org1.example.com`): signer plus any TLS files.

    The TLS root is `tls/ca.crt`, else the first of `msp/tlscacerts/`; it is the user's own
    organisation's TLS CA, which is right when connecting to a peer of that organisation.
    """
    root = Path(user_dir)
    tls = root / "tls"
    tls_root = _optional(tls / "ca.crt")
    if tls_root is None:
        tls_root = _first_file(root / "msp" / "tlscacerts")
    return ClientMaterial(
        signer=signer_from_msp(root / "msp", msp_id),
        tls_root_cert=tls_root,
        tls_client_cert=_optional(tls / "client.crt"),
        tls_client_key=_optional(tls / "client.key"),
    )


def read_pem(path: Path | str) -> bytes:
    """The bytes of a PEM file; raises `NotFound` naming the file when it is missing."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"no file {path}; check the path of the certificate or key") from exc


def tls_certificate_hash(cert_pem: bytes) -> bytes:
    """SHA-256 of a TLS certificate's DER bytes: the `tls_cert_hash` Fabric's deliver service
    compares with the mutual-TLS connection's client certificate (protocol doc §3.6).

    Raises `InvalidArgument` when `cert_pem` is not a PEM certificate.
    """
    try:
        der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise InvalidArgument("the TLS client certificate is not a PEM certificate") from exc
    return hashlib.sha256(der).digest()


def _optional(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _first_file(folder: Path) -> bytes | None:
    files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    return files[0].read_bytes() if files else None
