"""Certificate authorities for organisations: Fabric-style node OUs and alliance-role attributes.

Pure with respect to time: `now` is an argument. The alliance role (doctor, reviewer, auditor,
admin, ...) is encoded as Fabric CA encodes attributes, so Fabric's client-identity libraries
read it too: extension 1.2.3.4.5.6.7.8.1 holding `{"attrs":{"role":...}}`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medalliance.errors import InvalidArgument
from medalliance.identity.signing import sanitize_certificate_der

NodeOU = Literal["client", "peer", "admin", "orderer"]
ATTRIBUTE_EXTENSION_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A new certificate and its private key (PKCS8 PEM, unencrypted: store it with mode 0600)."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CertificateAuthority:
    """An organisation's CA: issues identity or TLS certificates and revocation lists.

    Holds its private key; `repr` names the CA only. Every time-dependent method takes `now`.
    """

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    def __repr__(self) -> str:
        return f"CertificateAuthority({self.certificate.subject.rfc4514_string()!r})"

    @classmethod
    def create(
        cls, common_name: str, organization: str, *, now: dt.datetime, valid_days: int = 3650
    ) -> CertificateAuthority:
        """A new self-signed ECDSA P-256 root CA `C=CN, O=organization, CN=common_name`.

        Raises `InvalidArgument` for a non-positive validity.
        """
        if valid_days <= 0:
            raise InvalidArgument("a CA must be valid for at least one day")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(_low_s(cert, key), key)

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """A CA from its PEM certificate and unencrypted PEM key; `InvalidArgument` if unusable."""
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument("the CA certificate or key is not valid PEM") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument("a CA key must be an ECDSA key")
        if cert.public_key() != key.public_key():
            raise InvalidArgument("the CA key does not match the CA certificate")
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self._key)

    @property
    def organization(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(attrs[0].value) if attrs else ""

    def issue(
        self,
        common_name: str,
        *,
        node_ou: NodeOU | None,
        now: dt.datetime,
        alliance_role: str | None = None,
        sans: Sequence[str] = (),
        valid_days: int = 365,
        server_auth: bool = False,
        client_auth: bool = False,
        key_agreement: bool = False,
    ) -> IssuedCertificate:
        """Issue a certificate for a new P-256 key pair, subject `C=CN, O, OU=node_ou, CN`.

        `sans` become DNS names, or IP addresses when they parse as one; `alliance_role` goes in
        the Fabric CA attribute extension. `key_agreement` makes an encryption certificate: key
        usage keyAgreement and not digitalSignature, so the key can never pass for a signer
        (docs/privacy.md §4). The certificate never outlives the CA. Raises
        `InvalidArgument` for a non-positive validity or a CA that is not valid at `now`.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = None if alliance_role is None else {"role": alliance_role}
        cert_pem = self.certify(
            key.public_key(),
            common_name,
            node_ou=node_ou,
            now=now,
            attributes=attributes,
            sans=sans,
            valid_days=valid_days,
            server_auth=server_auth,
            client_auth=client_auth,
            key_agreement=key_agreement,
        )
        return IssuedCertificate(cert_pem, _key_pem(key))

    def certify(
        self,
        public_key: ec.EllipticCurvePublicKey,
        common_name: str,
        *,
        node_ou: NodeOU | None,
        now: dt.datetime,
        attributes: Mapping[str, str] | None = None,
        sans: Sequence[str] = (),
        valid_days: int = 365,
        server_auth: bool = False,
        client_auth: bool = False,
        key_agreement: bool = False,
        serial_number: int | None = None,
    ) -> bytes:
        """A PEM certificate for someone else's `public_key` (a Fabric CA enrolment's CSR key).

        `attributes` go in the Fabric CA attribute extension as `{"attrs": {...}}`; the other
        arguments are as for `issue`, whose checks it shares. `serial_number` defaults to a
        random 159-bit one.
        """
        if valid_days <= 0:
            raise InvalidArgument("a certificate must be valid for at least one day")
        if now >= self.certificate.not_valid_after_utc:
            raise InvalidArgument(f"CA {self.organization} expired; renew it before issuing")
        if now < self.certificate.not_valid_before_utc:
            raise InvalidArgument(f"CA {self.organization} is not valid yet at {now:%Y-%m-%d}")
        subject = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
        ]
        if node_ou is not None:
            subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, node_ou))
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        not_after = min(now + dt.timedelta(days=valid_days), self.certificate.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(serial_number or x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not key_agreement,
                    content_commitment=False,
                    key_encipherment=server_auth or client_auth,
                    data_encipherment=False,
                    key_agreement=key_agreement,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        usages = [
            u
            for u, on in (
                (ExtendedKeyUsageOID.SERVER_AUTH, server_auth),
                (ExtendedKeyUsageOID.CLIENT_AUTH, client_auth),
            )
            if on
        ]
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False
            )
        if attributes is not None:
            value = json.dumps({"attrs": dict(attributes)}, separators=(",", ":"), sort_keys=True)
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ATTRIBUTE_EXTENSION_OID, value.encode()), critical=False
            )
        cert = _low_s(builder.sign(self._key, hashes.SHA256()), self._key)
        return cert.public_bytes(serialization.Encoding.PEM)

    def revoke(self, serials: Sequence[int], *, now: dt.datetime) -> bytes:
        """A CRL revoking `serials` from `now`, signed by this CA, as PEM.

        It carries the CA's key identifier as AKI: Fabric matches CRLs to CAs by it.
        """
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - CLOCK_SKEW)
            .next_update(now + dt.timedelta(days=30))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            # CRL numbers must grow; the issue time in seconds does without stored state.
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM)


def _low_s(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """`cert` with a low-S signature, as Fabric's own signers always produce (one encoding per
    certificate, so the identity hash never depends on the signing nonce)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return x509.load_der_x509_certificate(sanitize_certificate_der(der, key.public_key()))


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)
