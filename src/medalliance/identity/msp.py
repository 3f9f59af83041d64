"""Membership service providers: which certificates belong to an organisation, and in what role.

An identity is valid in MSP m when its certificate chains to one of m's CAs, is inside its
validity period (and so is its chain) at the time asked, is not revoked by a CRL that m's CA
signed, and — with node OUs enabled, as in Fabric's cryptogen layout — carries one of the OUs
client, peer, admin or orderer (protocol doc §7.1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import InvalidIdentity, MalformedMessage
from medalliance.identity.ca import ATTRIBUTE_EXTENSION_OID
from medalliance.identity.signing import verify_signature

NODE_OUS = ("client", "peer", "admin", "orderer")
_ROLE = msp_principal_pb2.MSPRole.MSPRoleType
_PRINCIPAL = msp_principal_pb2.MSPPrincipal.Classification


@dataclass(frozen=True, slots=True)
class Identity:
    """A validated member of an MSP."""

    msp_id: str
    serialized: bytes = field(repr=False)
    cert_pem: bytes = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    public_key: ec.EllipticCurvePublicKey = field(repr=False)
    node_ou: str | None
    alliance_role: str | None
    is_admin: bool
    id_hash: bytes = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)  # issuers up to a root

    def verify(self, signature: bytes, message: bytes) -> bool:
        return verify_signature(self.public_key, signature, message)


@dataclass(frozen=True)
class Msp:
    """One organisation's MSP: its CAs, admins, revocations and settings."""

    msp_id: str
    root_certs: tuple[x509.Certificate, ...]
    intermediate_certs: tuple[x509.Certificate, ...] = ()
    admin_certs: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    tls_root_certs: tuple[x509.Certificate, ...] = ()
    node_ous_enabled: bool = True
    revoked_serials: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "revoked_serials", self._revoked())

    def _revoked(self) -> frozenset[int]:
        serials: set[int] = set()
        for pem in self.crls:
            crl = x509.load_pem_x509_crl(pem)
            if any(_crl_signed_by(crl, ca) for ca in self.root_certs + self.intermediate_certs):
                serials.update(r.serial_number for r in crl)
        return frozenset(serials)

    def validate(
        self, cert_pem: bytes, *, at: dt.datetime, serialized: bytes | None = None
    ) -> Identity:
        """The identity of `cert_pem` in this MSP at time `at`; raises `InvalidIdentity`."""
        identity = self._identity(cert_pem, serialized)
        _check_time(identity, at)
        return identity

    def _identity(self, cert_pem: bytes, serialized: bytes | None) -> Identity:
        """Every check but the validity period (cacheable per certificate)."""
        try:
            return self._identity_unchecked(cert_pem, serialized)
        except ValueError as exc:  # `cryptography` parses certificate fields lazily
            raise InvalidIdentity(f"{self.msp_id}: the certificate is malformed") from exc

    def _identity_unchecked(self, cert_pem: bytes, serialized: bytes | None) -> Identity:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise InvalidIdentity(f"{self.msp_id}: the certificate is not valid PEM X.509") from exc
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidIdentity(f"{self.msp_id}: only ECDSA certificates are accepted")
        chain = self._chain_of(cert)
        if not chain:
            raise InvalidIdentity(
                f"certificate of {_cn(cert)} is not issued by a CA of {self.msp_id}"
            )
        if cert.serial_number in self.revoked_serials:
            raise InvalidIdentity(
                f"certificate serial {cert.serial_number:#x} is revoked by {self.msp_id}"
            )
        ous = [
            str(a.value)
            for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        ]
        node_ou = next((ou for ou in ous if ou in NODE_OUS), None)
        if self.node_ous_enabled and node_ou is None:
            raise InvalidIdentity(
                f"certificate of {_cn(cert)} has none of the OUs {', '.join(NODE_OUS)}"
            )
        der = cert.public_bytes(serialization.Encoding.DER)
        is_admin = node_ou == "admin" or any(
            der == a.public_bytes(serialization.Encoding.DER) for a in self.admin_certs
        )
        if serialized is None:
            serialized = bytes(
                identities_pb2.SerializedIdentity(
                    mspid=self.msp_id, id_bytes=cert_pem
                ).SerializeToString()
            )
        return Identity(
            msp_id=self.msp_id,
            serialized=serialized,
            cert_pem=cert_pem,
            certificate=cert,
            public_key=key,
            node_ou=node_ou,
            alliance_role=_alliance_role(cert),
            is_admin=is_admin,
            id_hash=hashlib.sha256(der).digest(),
            chain=tuple(chain),
        )

    def _chain_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """The issuers from `cert` up to a root of this MSP, or [] if there is no such chain."""
        chain: list[x509.Certificate] = []
        current = cert
        for _ in range(len(self.intermediate_certs) + 1):
            for root in self.root_certs:
                if _signed_by(current, root):
                    return [*chain, root]
            issuer = next(
                (i for i in self.intermediate_certs if i not in chain and _signed_by(current, i)),
                None,
            )
            if issuer is None:
                return []
            chain.append(issuer)
            current = issuer
        return []

    def to_proto_bytes(self) -> bytes:
        """This MSP as Fabric's `MSPConfig{type=FABRIC, config=FabricMSPConfig}` bytes."""

        def pem(c: x509.Certificate) -> bytes:
            return c.public_bytes(serialization.Encoding.PEM)

        root = pem(self.root_certs[0]) if self.root_certs else b""
        ous = msp_config_pb2.FabricNodeOUs(
            enable=self.node_ous_enabled,
            **{
                f"{ou}_ou_identifier": msp_config_pb2.FabricOUIdentifier(
                    certificate=root, organizational_unit_identifier=ou
                )
                for ou in NODE_OUS
            },
        )
        config = msp_config_pb2.FabricMSPConfig(
            name=self.msp_id,
            root_certs=[pem(c) for c in self.root_certs],
            intermediate_certs=[pem(c) for c in self.intermediate_certs],
            admins=[pem(c) for c in self.admin_certs],
            revocation_list=list(self.crls),
            tls_root_certs=[pem(c) for c in self.tls_root_certs],
            crypto_config=msp_config_pb2.FabricCryptoConfig(
                signature_hash_family="SHA2", identity_identifier_hash_function="SHA256"
            ),
            fabric_node_ous=ous,
        )
        return bytes(
            msp_config_pb2.MSPConfig(type=0, config=config.SerializeToString()).SerializeToString()
        )

    @classmethod
    def from_proto_bytes(cls, data: bytes) -> Msp:
        outer = msp_config_pb2.MSPConfig()
        config = msp_config_pb2.FabricMSPConfig()
        try:
            outer.ParseFromString(data)
            config.ParseFromString(outer.config)
            return cls(
                msp_id=str(config.name),
                root_certs=tuple(x509.load_pem_x509_certificate(c) for c in config.root_certs),
                intermediate_certs=tuple(
                    x509.load_pem_x509_certificate(c) for c in config.intermediate_certs
                ),
                admin_certs=tuple(x509.load_pem_x509_certificate(c) for c in config.admins),
                crls=tuple(bytes(c) for c in config.revocation_list),
                tls_root_certs=tuple(
                    x509.load_pem_x509_certificate(c) for c in config.tls_root_certs
                ),
                node_ous_enabled=bool(config.fabric_node_ous.enable),
            )
        except (DecodeError, ValueError) as exc:
            raise MalformedMessage("MSP configuration", str(exc)) from exc

    @classmethod
    def from_dir(cls, msp_dir: Path, msp_id: str) -> Msp:
        """Read Fabric's MSP folder layout (cacerts, intermediatecerts, admincerts, crls, ...)."""

        def certs(sub: str) -> tuple[x509.Certificate, ...]:
            folder = msp_dir / sub
            files = sorted(folder.glob("*")) if folder.is_dir() else []
            return tuple(x509.load_pem_x509_certificate(f.read_bytes()) for f in files)

        config_path = msp_dir / "config.yaml"
        enabled = False
        if config_path.exists():
            loaded = yaml.safe_load(config_path.read_text()) or {}
            enabled = bool((loaded.get("NodeOUs") or {}).get("Enable", False))
        crl_dir = msp_dir / "crls"
        return cls(
            msp_id=msp_id,
            root_certs=certs("cacerts"),
            intermediate_certs=certs("intermediatecerts"),
            admin_certs=certs("admincerts"),
            crls=tuple(f.read_bytes() for f in sorted(crl_dir.glob("*")))
            if crl_dir.is_dir()
            else (),
            tls_root_certs=certs("tlscacerts"),
            node_ous_enabled=enabled,
        )


class MspManager:
    """The MSPs of a channel; deserialises and validates identities, with a per-certificate cache."""

    def __init__(self, msps: Iterable[Msp], cache_size: int = 4096) -> None:
        self._msps = {m.msp_id: m for m in msps}
        self._cache: OrderedDict[bytes, Identity] = OrderedDict()
        self._cache_size = cache_size

    @property
    def msp_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._msps))

    def get(self, msp_id: str) -> Msp:
        try:
            return self._msps[msp_id]
        except KeyError:
            raise InvalidIdentity(f"unknown MSP {msp_id!r}: not a member of this channel") from None

    def deserialize(self, serialized: bytes, *, at: dt.datetime) -> Identity:
        """The valid identity of a serialized `SerializedIdentity` at `at`, or a typed error."""
        identity = self._cache.get(serialized)
        if identity is None:
            parsed = identities_pb2.SerializedIdentity()
            try:
                parsed.ParseFromString(serialized)
            except DecodeError as exc:
                raise MalformedMessage("serialized identity", str(exc)) from exc
            identity = self.get(str(parsed.mspid))._identity(bytes(parsed.id_bytes), serialized)
            self._cache[serialized] = identity
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(serialized)
        try:
            _check_time(identity, at)
        except ValueError as exc:
            raise InvalidIdentity(f"{identity.msp_id}: the certificate is malformed") from exc
        return identity

    def satisfies_principal(
        self, identity: Identity, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        """Whether `identity` is the principal (Fabric's MSP role semantics with node OUs)."""
        if principal.principal_classification == _PRINCIPAL.Value("ROLE"):
            role = msp_principal_pb2.MSPRole()
            try:
                role.ParseFromString(principal.principal)
            except DecodeError:
                return False
            if role.msp_identifier != identity.msp_id:
                return False
            name = _ROLE.Name(role.role)
            if name == "MEMBER":
                return True
            if name == "ADMIN":
                return identity.is_admin
            return identity.node_ou == str(name).lower()
        if principal.principal_classification == _PRINCIPAL.Value("IDENTITY"):
            other = identities_pb2.SerializedIdentity()
            try:
                other.ParseFromString(principal.principal)
            except DecodeError:
                return False
            return other.mspid == identity.msp_id and bytes(other.id_bytes) == identity.cert_pem
        return False


def _check_time(identity: Identity, at: dt.datetime) -> None:
    """The certificate and its chain are valid at `at`; raises `InvalidIdentity`."""
    for c in (identity.certificate, *identity.chain):
        if at < c.not_valid_before_utc:
            raise InvalidIdentity(
                f"certificate of {_cn(c)} is not valid before {c.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
            )
        if at > c.not_valid_after_utc:
            raise InvalidIdentity(
                f"certificate of {_cn(c)} expired at {c.not_valid_after_utc:%Y-%m-%d %H:%M}Z"
            )


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    return (
        crl.issuer == ca.subject
        and isinstance(key, ec.EllipticCurvePublicKey)
        and crl.is_signature_valid(key)
    )


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={names[0].value!s}" if names else "an unnamed subject"


def _alliance_role(cert: x509.Certificate) -> str | None:
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTE_EXTENSION_OID)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    try:
        role = json.loads(value.value).get("attrs", {}).get("role")
    except (ValueError, AttributeError):
        return None
    return role if isinstance(role, str) else None
