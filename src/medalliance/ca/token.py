"""Fabric CA's request authentication: the enrolment token and the certificate request.

Pure: no clock, no I/O. A request other than `enroll` carries `Authorization: <b64 cert>.<b64
sig>`, where `sig` is an ECDSA-SHA256 signature by the caller's enrolment key over
`<METHOD>.<b64 request URI>.<b64 body>.<b64 cert>` (Fabric CA's util.GenECDSAToken, as
fabric-ca-client builds it): binding the method, the path and the exact body bytes, so a token
taken from one request cannot authorise a different body or endpoint. (The older form without
method and URI, Fabric CA's 1.3 compatibility mode, is refused.) `enroll` uses HTTP basic auth.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medalliance.errors import BadCertificateRequest, CaAuthenticationFailed

_CURVES = (ec.SECP256R1, ec.SECP384R1)


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    enrollment_id: str
    secret: str = field(repr=False)


def sign_token(
    cert_pem: bytes, key: ec.EllipticCurvePrivateKey, method: str, uri: str, body: bytes
) -> str:
    """The `Authorization` value for a request of the identity `cert_pem`/`key` (client side)."""
    b64_cert = _b64(cert_pem)
    message = f"{method}.{_b64(uri.encode())}.{_b64(body)}.{b64_cert}".encode()
    return f"{b64_cert}.{_b64(key.sign(message, ec.ECDSA(hashes.SHA256())))}"


def verify_token(header: str, method: str, uri: str, body: bytes) -> x509.Certificate:
    """The certificate whose key signed this request, or `CaAuthenticationFailed`.

    Checks the signature only: the caller must still check that this CA issued the certificate,
    that it is valid now and not revoked (`FabricCa.authenticate`).
    """
    parts = header.strip().split(".")
    if len(parts) != 2:
        raise CaAuthenticationFailed(
            "authentication failure: the Authorization header is not a Fabric CA token "
            "(<b64 cert>.<b64 signature>); enroll first and sign the request"
        )
    b64_cert, b64_sig = parts
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(b64_cert, validate=True))
        signature = base64.b64decode(b64_sig, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CaAuthenticationFailed("authentication failure: the token does not decode") from exc
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CaAuthenticationFailed("authentication failure: only ECDSA identities are accepted")
    message = f"{method}.{_b64(uri.encode())}.{_b64(body)}.{b64_cert}".encode()
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise CaAuthenticationFailed(
            "authentication failure: the token's signature does not cover this method, path "
            "and body"
        ) from exc
    return cert


def parse_basic(header: str) -> BasicCredentials:
    """`Basic <b64 id:secret>` as its parts, or `CaAuthenticationFailed`."""
    scheme, _, value = header.strip().partition(" ")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, binascii.Error) as exc:
        raise CaAuthenticationFailed("authentication failure: malformed basic auth") from exc
    enrollment_id, sep, secret = decoded.partition(":")
    if scheme.lower() != "basic" or not sep:
        raise CaAuthenticationFailed(
            "authentication failure: enroll takes HTTP basic auth with the enrollment ID and secret"
        )
    return BasicCredentials(enrollment_id, secret)


def csr_public_key(csr_pem: str, enrollment_id: str) -> ec.EllipticCurvePublicKey:
    """The public key of a PKCS#10 request that proves possession of its key.

    Raises `BadCertificateRequest` for a request that does not parse, whose signature does not
    verify with the key it holds, with a key other than ECDSA P-256/P-384, or whose CN is not
    the enrollment ID (Fabric CA's rule).
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        valid = csr.is_signature_valid
        key = csr.public_key()
        names = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except ValueError as exc:
        raise BadCertificateRequest(
            "certificate_request is not a PEM PKCS#10 request; generate one with your key"
        ) from exc
    if not valid:
        raise BadCertificateRequest(
            "the certificate request's signature does not verify with the key it holds; sign "
            "it with the private key of that public key"
        )
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, _CURVES):
        raise BadCertificateRequest("the certificate request's key must be ECDSA P-256 or P-384")
    if names and str(names[0].value) != enrollment_id:
        raise BadCertificateRequest(
            "the certificate request's common name must equal the enrollment ID"
        )
    return key


def public_key_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
