"""Membership service providers: which certificates belong to an organisation, and in what role.

An identity is valid in MSP m when its certificate chains to one of m's CAs (through its
intermediates, issued by a leaf CA of that tree), is inside its validity period (and so is its
chain) at the time asked, is not revoked by a CRL that the issuing CA signed, and — with node OUs
enabled, as in Fabric's cryptogen layout — carries exactly one of the OUs client, peer, admin or
orderer (protocol doc §7.1, `fabric: msp/mspimplvalidate.go`). Pure except `Msp.from_dir`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
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

from medalliance.errors import InvalidArgument, InvalidIdentity, MalformedMessage
from medalliance.identity.ca import ATTRIBUTE_EXTENSION_OID
from medalliance.identity.signing import (
    sanitize_certificate_der,
    serialize_identity,
    sha256,
    verify_digest,
)
from medalliance.identity.verified import VERIFIED

NODE_OUS = ("client", "peer", "admin", "orderer")
_ROLE = msp_principal_pb2.MSPRole.MSPRoleType
_PRINCIPAL = msp_principal_pb2.MSPPrincipal.Classification
_FABRIC_MSP_TYPE = 0  # msp.MSPConfig.type: FABRIC


@dataclass(frozen=True, slots=True)
class Identity:
    """A validated member of an MSP. `serialized` is the `SerializedIdentity` as received."""

    msp_id: str
    serialized: bytes = field(repr=False)
    cert_pem: bytes = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    public_key: ec.EllipticCurvePublicKey = field(repr=False)
    node_ou: str | None
    alliance_role: str | None
    is_admin: bool
    # sha256 of the low-S (sanitised) cert DER: Fabric's identity uniqueness key (identities.go)
    id_hash: bytes = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)  # issuers up to a root

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this identity's low-S ECDSA-SHA256 signature of `message`
        (each distinct success verified once per process: identity/verified.py)."""
        digest = sha256(message)
        return VERIFIED.check(
            self.id_hash,
            signature,
            digest,
            lambda: verify_digest(self.public_key, signature, digest),
        )


@dataclass(frozen=True)
class Msp:
    """One organisation's MSP: its CAs, admins, revocation lists and settings.

    `revoked_serials` is derived from `crls`: only CRLs whose signature verifies against a root or
    intermediate CA of this MSP count. Raises `InvalidArgument` for an MSP without root CAs, a
    CA certificate that is not a CA, or a CRL that does not parse.
    """

    msp_id: str
    root_certs: tuple[x509.Certificate, ...]
    intermediate_certs: tuple[x509.Certificate, ...] = ()
    admin_certs: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()  # PEM, kept to round-trip the MSP config
    tls_root_certs: tuple[x509.Certificate, ...] = ()
    node_ous_enabled: bool = True
    revoked_serials: frozenset[int] = field(init=False)
    # CA certificate DER -> serials revoked by a CRL that CA signed (Fabric checks the issuer's).
    _revoked_by_ca: Mapping[bytes, frozenset[int]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _admin_ders: frozenset[bytes] = field(init=False, repr=False, compare=False, hash=False)
    _internal_cas: frozenset[bytes] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.root_certs:
            raise InvalidArgument(f"MSP {self.msp_id} needs at least one root CA certificate")
        for ca in self.root_certs + self.intermediate_certs:
            if not _is_ca(ca):
                raise InvalidArgument(f"MSP {self.msp_id}: {_cn(ca)} is not a CA certificate")
        revoked = self._revoked()
        object.__setattr__(self, "_revoked_by_ca", revoked)
        object.__setattr__(self, "revoked_serials", frozenset().union(*revoked.values()))
        object.__setattr__(self, "_admin_ders", frozenset(_der(c) for c in self.admin_certs))
        # A CA that issued an intermediate is an internal node of the certification tree; Fabric
        # accepts identities only from leaf CAs (mspimplvalidate.go getValidationChain).
        cas = self.root_certs + self.intermediate_certs
        internal = {_der(ca) for i in self.intermediate_certs for ca in cas if _signed_by(i, ca)}
        object.__setattr__(self, "_internal_cas", frozenset(internal))

    def _revoked(self) -> dict[bytes, frozenset[int]]:
        revoked: dict[bytes, set[int]] = {}
        for pem in self.crls:
            try:
                crl = x509.load_pem_x509_crl(pem)
                serials = {r.serial_number for r in crl}
            except ValueError as exc:
                raise MalformedMessage(f"CRL of {self.msp_id}", "not a PEM X.509 CRL") from exc
            for ca in self.root_certs + self.intermediate_certs:
                if _crl_signed_by(crl, ca):
                    revoked.setdefault(_der(ca), set()).update(serials)
        return {ca: frozenset(serials) for ca, serials in revoked.items()}

    def validate(
        self, cert_pem: bytes, *, at: dt.datetime, serialized: bytes | None = None
    ) -> Identity:
        """The identity of `cert_pem` in this MSP at time `at`.

        Raises `InvalidIdentity` saying what is wrong (foreign CA, expired, not yet valid,
        revoked, missing node OU, malformed). `serialized` defaults to a fresh serialization.
        """
        identity = self.identify(cert_pem, serialized)
        check_validity_period(identity, at)
        return identity

    def identify(self, cert_pem: bytes, serialized: bytes | None = None) -> Identity:
        """Every check of `validate` but the validity period (so the result can be cached)."""
        try:
            return self._identify(cert_pem, serialized)
        except ValueError as exc:  # `cryptography` parses certificate fields lazily
            raise InvalidIdentity(f"{self.msp_id}: the certificate is malformed") from exc

    def _identify(self, cert_pem: bytes, serialized: bytes | None) -> Identity:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise InvalidIdentity(f"{self.msp_id}: the certificate is not valid PEM X.509") from exc
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidIdentity(f"{self.msp_id}: only ECDSA certificates are accepted")
        if _is_ca(cert):
            raise InvalidIdentity(f"certificate of {_cn(cert)} is a CA and cannot be an identity")
        chain = self._chain_of(cert)
        if not chain:
            raise InvalidIdentity(
                f"certificate of {_cn(cert)} is not issued by a CA of {self.msp_id}"
            )
        if _der(chain[0]) in self._internal_cas:
            raise InvalidIdentity(
                f"certificate of {_cn(cert)} is issued by {_cn(chain[0])}, which has "
                f"intermediate CAs in {self.msp_id}; only leaf CAs may issue identities"
            )
        if cert.serial_number in self._revoked_by_ca.get(_der(chain[0]), frozenset()):
            raise InvalidIdentity(
                f"certificate serial {cert.serial_number:#x} is revoked by {self.msp_id}"
            )
        node_ou = self._node_ou(cert)
        der = _der(cert)
        is_admin = (self.node_ous_enabled and node_ou == "admin") or der in self._admin_ders
        return Identity(
            msp_id=self.msp_id,
            serialized=serialized or serialize_identity(self.msp_id, cert_pem),
            cert_pem=cert_pem,
            certificate=cert,
            public_key=key,
            node_ou=node_ou,
            alliance_role=_alliance_role(cert),
            is_admin=is_admin,
            id_hash=_id_hash(cert, chain[0]),
            chain=tuple(chain),
        )

    def _node_ou(self, cert: x509.Certificate) -> str | None:
        ous = {
            str(a.value)
            for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        }
        found = [ou for ou in NODE_OUS if ou in ous]
        if self.node_ous_enabled and len(found) != 1:
            # Fabric: "the identity must be a client, a peer, an orderer or an admin identity to
            # be valid, not a combination of them" (validateIdentityOUsV142).
            raise InvalidIdentity(
                f"certificate of {_cn(cert)} must carry exactly one of the OUs "
                f"{', '.join(NODE_OUS)}, not {sorted(found) or 'none'}"
            )
        return found[0] if len(found) == 1 else None

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
        """This MSP as Fabric's `MSPConfig{type=FABRIC, config=FabricMSPConfig}` bytes.

        Node OU identifiers point at the first root CA, as cryptogen's config.yaml does.
        """
        root = _pem(self.root_certs[0])
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
            root_certs=[_pem(c) for c in self.root_certs],
            intermediate_certs=[_pem(c) for c in self.intermediate_certs],
            admins=[_pem(c) for c in self.admin_certs],
            revocation_list=list(self.crls),
            tls_root_certs=[_pem(c) for c in self.tls_root_certs],
            crypto_config=msp_config_pb2.FabricCryptoConfig(
                signature_hash_family="SHA2", identity_identifier_hash_function="SHA256"
            ),
            fabric_node_ous=ous,
        )
        outer = msp_config_pb2.MSPConfig(type=_FABRIC_MSP_TYPE, config=config.SerializeToString())
        return bytes(outer.SerializeToString())

    @classmethod
    def from_proto_bytes(cls, data: bytes) -> Msp:
        """An MSP from `MSPConfig` bytes.

        Raises `MalformedMessage` for bytes or certificates that do not parse and
        `InvalidArgument` for a non-Fabric MSP type or an unusable configuration.
        """
        outer = msp_config_pb2.MSPConfig()
        config = msp_config_pb2.FabricMSPConfig()
        try:
            outer.ParseFromString(data)
            if outer.type != _FABRIC_MSP_TYPE:
                raise InvalidArgument(f"MSP type {outer.type} is not supported; only FABRIC (0)")
            config.ParseFromString(outer.config)
            certs = _load_pems
            return cls(
                msp_id=str(config.name),
                root_certs=certs(config.root_certs),
                intermediate_certs=certs(config.intermediate_certs),
                admin_certs=certs(config.admins),
                crls=tuple(bytes(c) for c in config.revocation_list),
                tls_root_certs=certs(config.tls_root_certs),
                node_ous_enabled=bool(config.fabric_node_ous.enable),
            )
        except (DecodeError, ValueError) as exc:
            raise MalformedMessage("MSP configuration", str(exc)) from exc

    @classmethod
    def from_dir(cls, msp_dir: Path, msp_id: str) -> Msp:
        """Read Fabric's MSP folder: cacerts, intermediatecerts, admincerts, crls, tlscacerts and
        config.yaml with `NodeOUs.Enable`. Raises `InvalidArgument` when a file does not parse.
        """

        def files(sub: str) -> list[Path]:
            folder = msp_dir / sub
            return sorted(f for f in folder.iterdir() if f.is_file()) if folder.is_dir() else []

        def certs(sub: str) -> tuple[x509.Certificate, ...]:
            try:
                return _load_pems([f.read_bytes() for f in files(sub)])
            except ValueError as exc:
                raise InvalidArgument(
                    f"{msp_dir / sub} holds a file that is not a PEM certificate"
                ) from exc

        config_path = msp_dir / "config.yaml"
        enabled = config_path.is_file() and node_ous_enabled(config_path.read_text())
        return cls(
            msp_id=msp_id,
            root_certs=certs("cacerts"),
            intermediate_certs=certs("intermediatecerts"),
            admin_certs=certs("admincerts"),
            crls=tuple(f.read_bytes() for f in files("crls")),
            tls_root_certs=certs("tlscacerts"),
            node_ous_enabled=enabled,
        )


def check_validity_period(identity: Identity, at: dt.datetime) -> None:
    """The certificate and its chain are valid at `at`; raises `InvalidIdentity` otherwise."""
    try:
        for c in (identity.certificate, *identity.chain):
            if at < c.not_valid_before_utc:
                raise InvalidIdentity(
                    f"certificate of {_cn(c)} is not valid before {c.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
                )
            if at > c.not_valid_after_utc:
                raise InvalidIdentity(
                    f"certificate of {_cn(c)} expired at {c.not_valid_after_utc:%Y-%m-%d %H:%M}Z"
                )
    except ValueError as exc:
        raise InvalidIdentity(f"{identity.msp_id}: the certificate is malformed") from exc


# When the certificate and its whole chain are valid: the latest start, the earliest end.
_Window = tuple[dt.datetime, dt.datetime]


def _validity_window(identity: Identity) -> _Window | None:
    """The times at which `check_validity_period` passes, computed once per identity rather
    than per signature; None when a date does not read (every check then fails as malformed)."""
    try:
        certificates = (identity.certificate, *identity.chain)
        return (
            max(c.not_valid_before_utc for c in certificates),
            min(c.not_valid_after_utc for c in certificates),
        )
    except ValueError:
        return None


class MspManager:
    """The MSPs of a channel: deserialises and validates identities, judges principals.

    Parsing and chain checks are cached per serialized identity (bounded LRU, verdicts included)
    because a block validation asks thousands of times; the validity period is checked against
    `at` on every call.
    """

    def __init__(self, msps: Iterable[Msp], cache_size: int = 4096) -> None:
        self._msps: dict[str, Msp] = {m.msp_id: m for m in msps}
        self._cache: OrderedDict[bytes, tuple[Identity, _Window | None] | str] = OrderedDict()
        self._cache_size = cache_size

    @property
    def msp_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._msps))

    def get(self, msp_id: str) -> Msp:
        """The MSP named `msp_id`; raises `InvalidIdentity` for an MSP not in this manager."""
        try:
            return self._msps[msp_id]
        except KeyError:
            raise InvalidIdentity(f"unknown MSP {msp_id!r}: not a member of this channel") from None

    def deserialize(self, serialized: bytes, *, at: dt.datetime) -> Identity:
        """The valid identity of `SerializedIdentity` bytes at `at`.

        Raises `MalformedMessage` for bytes that are not a `SerializedIdentity` and
        `InvalidIdentity` for an unknown MSP or an invalid certificate.
        """
        entry = self._cache.get(serialized)
        if entry is None:
            parsed = identities_pb2.SerializedIdentity()
            try:
                parsed.ParseFromString(serialized)
            except DecodeError as exc:
                raise MalformedMessage("serialized identity", str(exc)) from exc
            try:
                msp = self.get(str(parsed.mspid))
                identity = msp.identify(bytes(parsed.id_bytes), serialized)
                entry = (identity, _validity_window(identity))
            except InvalidIdentity as exc:
                entry = str(exc)  # a message, not the exception: re-raising grows tracebacks
            self._cache[serialized] = entry
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(serialized)
        if isinstance(entry, str):
            raise InvalidIdentity(entry)
        identity, window = entry
        if window is None or not window[0] <= at <= window[1]:
            check_validity_period(identity, at)  # raises, saying which certificate and why
        return identity

    def satisfies_principal(
        self, identity: Identity, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        """Whether `identity` is `principal`, by Fabric's rules with node OUs (§7.1).

        ROLE: member = any valid identity of the MSP; client/peer/orderer = that OU (never when
        the MSP has node OUs disabled); admin = admin OU or listed admin certificate. IDENTITY:
        the same MSP and certificate. Anything else, or an identity of another MSP, is False.
        """
        return self.satisfies(identity, principal.principal_classification, principal.principal)

    def satisfies(self, identity: Identity, classification: int, principal: bytes) -> bool:
        """`satisfies_principal` given the principal's classification and bytes (a compiled
        policy keeps them, rather than reading them out of the message on every check)."""
        msp = self._msps.get(identity.msp_id)
        if msp is None:
            return False
        if classification == _ROLE_PRINCIPAL:
            role = _parsed_role(principal)
            if role is None or role[0] != identity.msp_id:
                return False
            if role[1] == _MEMBER:
                return True
            if role[1] == _ADMIN:
                return identity.is_admin
            wanted = _NODE_OUS.get(role[1])
            return msp.node_ous_enabled and wanted is not None and identity.node_ou == wanted
        if classification == _PRINCIPAL.Value("IDENTITY"):
            return _same_identity(identity, bytes(principal))
        return False


_ROLE_PRINCIPAL = _PRINCIPAL.Value("ROLE")
_MEMBER, _ADMIN = _ROLE.Value("MEMBER"), _ROLE.Value("ADMIN")
_NODE_OUS = {_ROLE.Value(ou.upper()): ou for ou in ("client", "peer", "orderer")}


@functools.lru_cache(maxsize=256)
def _parsed_role(principal: bytes) -> tuple[str, int] | None:
    """(MSP id, role) of a ROLE principal's bytes, None when they do not decode. Parsed once
    per distinct bytes: a block's policy checks ask about the same few principals thousands of
    times. Keyed by the exact bytes and holding no verdict about any identity."""
    role = msp_principal_pb2.MSPRole()
    try:
        role.ParseFromString(principal)
    except DecodeError:
        return None
    return str(role.msp_identifier), int(role.role)


def _same_identity(identity: Identity, serialized: bytes) -> bool:
    other = identities_pb2.SerializedIdentity()
    try:
        other.ParseFromString(serialized)
        cert = x509.load_pem_x509_certificate(bytes(other.id_bytes))
        # Fabric compares the (sanitised) DER certificates, not the PEM text.
        issuer = identity.chain[0] if identity.chain else None
        digest = _id_hash(cert, issuer) if issuer else hashlib.sha256(_der(cert)).digest()
        return other.mspid == identity.msp_id and digest == identity.id_hash
    except (DecodeError, ValueError):
        return False


def _id_hash(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """sha256 of `cert`'s DER with its signature in low-S form, so that the two encodings of one
    certificate count as one identity (Fabric's sanitizeCert)."""
    der = _der(cert)
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        der = sanitize_certificate_der(der, key)
    return hashlib.sha256(der).digest()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    # OpenSSL accepts high-S certificate signatures, as Fabric does ("sanitizeCert", §7.1).
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
        attrs = json.loads(value.value).get("attrs", {})
        role = attrs.get("role") if isinstance(attrs, dict) else None
    except (ValueError, AttributeError):
        return None
    return role if isinstance(role, str) else None


def node_ous_enabled(config_yaml: str) -> bool:
    """Whether a Fabric MSP `config.yaml` enables node OUs (`NodeOUs: {Enable: true}`)."""
    try:
        loaded = yaml.safe_load(config_yaml) or {}
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"MSP config.yaml does not parse: {exc}") from exc
    node_ous = loaded.get("NodeOUs") if isinstance(loaded, dict) else None
    return bool(node_ous.get("Enable", False)) if isinstance(node_ous, dict) else False


def _load_pems(blobs: Iterable[bytes]) -> tuple[x509.Certificate, ...]:
    """Every certificate in `blobs` (a PEM file may hold several); ValueError if one is bad."""
    return tuple(cert for blob in blobs for cert in x509.load_pem_x509_certificates(bytes(blob)))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
