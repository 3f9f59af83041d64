"""The operator's side of Fabric CA: enrol, reenrol, register, revoke, list over HTTPS.

Speaks the same REST API and token as Fabric's own clients (`token.sign_token`), with the
standard library's HTTP client, and writes an enrolment in Fabric CA's MSP folder layout, as
`fabric-ca-client enroll -M DIR` does: `signcerts/cert.pem`, `keystore/<ski>_sk` (mode 0600),
`cacerts/<host>-<port>.pem`, plus a node-OU `config.yaml` so the folder is a usable MSP.
Secrets and keys are never logged nor put in an error message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medalliance.ca.token import sign_token
from medalliance.errors import (
    CATEGORIES,
    InvalidArgument,
    MedallianceError,
    NotFound,
    Unavailable,
)

_TIMEOUT_S = 30.0
_MSP_CONFIG = """NodeOUs:
  Enable: true
  ClientOUIdentifier: {{Certificate: cacerts/{ca}, OrganizationalUnitIdentifier: client}}
  PeerOUIdentifier: {{Certificate: cacerts/{ca}, OrganizationalUnitIdentifier: peer}}
  AdminOUIdentifier: {{Certificate: cacerts/{ca}, OrganizationalUnitIdentifier: admin}}
  OrdererOUIdentifier: {{Certificate: cacerts/{ca}, OrganizationalUnitIdentifier: orderer}}
"""


@dataclass(frozen=True, slots=True)
class Enrollment:
    """An enrolled identity: its certificate, private key and the CA's chain (PEM)."""

    enrollment_id: str
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    ca_chain_pem: bytes

    @property
    def serial_hex(self) -> str:
        return format(x509.load_pem_x509_certificate(self.cert_pem).serial_number, "x")


class CaClient:
    """A client of one Fabric CA at `url` (https://host:port), trusting `tls_ca_pem`."""

    def __init__(self, url: str, *, tls_ca_pem: bytes | None, ca_name: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidArgument(f"CA URL {url!r} is not https://HOST:PORT")
        self.url = url.rstrip("/")
        self.ca_name = ca_name
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._context = ssl.create_default_context(
                cadata=tls_ca_pem.decode() if tls_ca_pem else None
            )

    @property
    def host_port(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}-{parts.port or 443}"

    def cainfo(self) -> dict[str, Any]:
        return self._call("GET", "cainfo")

    def enroll(self, enrollment_id: str, secret: str) -> Enrollment:
        """Enrol with the secret a registrar gave; a new P-256 key never leaves this process."""
        key = ec.generate_private_key(ec.SECP256R1())
        body = {"certificate_request": _csr(key, enrollment_id), "caname": self.ca_name}
        result = self._call("POST", "enroll", body, basic=(enrollment_id, secret))
        return _enrollment(enrollment_id, key, result)

    def reenroll(self, current: Enrollment) -> Enrollment:
        """A new certificate and key for `current`, authenticated by its certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        body = {"certificate_request": _csr(key, current.enrollment_id), "caname": self.ca_name}
        result = self._call("POST", "reenroll", body, signer=current)
        return _enrollment(current.enrollment_id, key, result)

    def register(
        self,
        registrar: Enrollment,
        enrollment_id: str,
        *,
        type: str = "client",
        role: str | None = None,
        affiliation: str = "",
        max_enrollments: int = 0,
        secret: str | None = None,
    ) -> str:
        """Register an identity (with the alliance `role` attribute in its certificates);
        returns its enrolment secret."""
        body: dict[str, Any] = {
            "id": enrollment_id,
            "type": type,
            "affiliation": affiliation,
            "max_enrollments": max_enrollments,
            "attrs": [] if role is None else [{"name": "role", "value": role, "ecert": True}],
            "caname": self.ca_name,
        }
        if secret is not None:
            body["secret"] = secret
        return str(self._call("POST", "register", body, signer=registrar)["secret"])

    def revoke(
        self,
        registrar: Enrollment,
        *,
        enrollment_id: str = "",
        serial_hex: str = "",
        aki: str = "",
        reason: str = "",
        gencrl: bool = False,
    ) -> dict[str, Any]:
        body = {
            "id": enrollment_id,
            "serial": serial_hex,
            "aki": aki,
            "reason": reason,
            "gencrl": gencrl,
            "caname": self.ca_name,
        }
        return self._call("POST", "revoke", body, signer=registrar)

    def gencrl(self, registrar: Enrollment) -> bytes:
        """The CA's CRL, PEM."""
        result = self._call("POST", "gencrl", {"caname": self.ca_name}, signer=registrar)
        return base64.b64decode(result["CRL"])

    def identities(self, registrar: Enrollment) -> list[dict[str, Any]]:
        return list(self._call("GET", "identities", signer=registrar)["identities"])

    def identity(self, registrar: Enrollment, enrollment_id: str) -> dict[str, Any]:
        return self._call("GET", f"identities/{quote(enrollment_id, safe='')}", signer=registrar)

    def _call(
        self,
        method: str,
        endpoint: str,
        body: dict[str, Any] | None = None,
        *,
        basic: tuple[str, str] | None = None,
        signer: Enrollment | None = None,
    ) -> dict[str, Any]:
        path = f"/api/v1/{endpoint}"
        data = b"" if body is None else json.dumps(body).encode()
        # the scheme is checked to be http(s) in __init__
        request = urllib.request.Request(self.url + path, data=data or None, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if basic is not None:
            pair = f"{basic[0]}:{basic[1]}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
        if signer is not None:
            token = sign_token(signer.cert_pem, signer.key, method, path, data)
            request.add_header("Authorization", token)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=self._context) as r:  # noqa: S310
                envelope = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise _error(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unavailable(f"cannot reach the CA at {self.url}: {exc}; is it running?") from None
        result = envelope.get("result")
        if not envelope.get("success") or not isinstance(result, dict):
            raise MedallianceError(f"the CA at {self.url} answered without a result")
        return result


def write_msp(enrollment: Enrollment, folder: Path, cacert_name: str) -> Path:
    """Write `enrollment` as Fabric CA's client does into `folder` (an `msp/` folder); never
    overwrites a file. Returns the keystore file."""
    key_pem = enrollment.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    point = enrollment.key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    keystore = folder / "keystore" / f"{hashlib.sha256(point).hexdigest()}_sk"
    ca_file = f"{cacert_name}.pem"
    _write(keystore, key_pem, secret=True)
    _write(folder / "signcerts" / "cert.pem", enrollment.cert_pem)
    _write(folder / "cacerts" / ca_file, enrollment.ca_chain_pem)
    _write(folder / "config.yaml", _MSP_CONFIG.format(ca=ca_file).encode())
    return keystore


def load_enrollment(folder: Path) -> Enrollment:
    """The enrolment in an MSP folder (`signcerts/`, `keystore/`): Fabric CA's layout or
    cryptogen's. Raises `NotFound` when either is missing."""
    certs = sorted(p for p in (folder / "signcerts").glob("*") if p.is_file())
    keys = sorted(p for p in (folder / "keystore").glob("*") if p.is_file())
    if not certs or not keys:
        raise NotFound(f"{folder} holds no enrolment (signcerts/, keystore/); enroll first")
    key = serialization.load_pem_private_key(keys[0].read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument(f"{keys[0]} is not an ECDSA key")
    cert_pem = certs[0].read_bytes()
    names = x509.load_pem_x509_certificate(cert_pem).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )
    cas = sorted(p for p in (folder / "cacerts").glob("*.pem"))
    chain = cas[0].read_bytes() if cas else b""
    return Enrollment(str(names[0].value) if names else "", cert_pem, key, chain)


def _enrollment(enrollment_id: str, key: ec.EllipticCurvePrivateKey, result: Any) -> Enrollment:
    cert = base64.b64decode(result["Cert"])
    chain = base64.b64decode(result["ServerInfo"]["CAChain"])
    return Enrollment(enrollment_id, cert, key, chain)


def _csr(key: ec.EllipticCurvePrivateKey, enrollment_id: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, enrollment_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _error(status: int, raw: bytes) -> MedallianceError:
    try:
        errors = json.loads(raw).get("errors") or []
        message = str(errors[0]["message"]) if errors else f"HTTP {status}"
    except (ValueError, AttributeError, KeyError, IndexError, TypeError):
        message = f"HTTP {status}"
    category = next((c for c in CATEGORIES if c.status.http == status), MedallianceError)
    return category(f"the CA refused: {message}")


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
