"""One organisation's Fabric CA: the registrar core, the store and the org CA's key together.

It signs with the CA `network init` made for the organisation (`ca/priv_sk`), so the channel's
MSP trusts every certificate it issues; enrolment certificates carry the identity type as node
OU and the attributes (the alliance `role` among them) in Fabric CA's extension. Each method
answers one REST call with the `result` of Fabric CA's JSON envelope. Calls are serialised by a
lock: the store's connection is not thread-safe and enrolment counting must not interleave.
Never logs a secret, a CSR or a request body: enrolment IDs, serials and outcomes only.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from medalliance.ca import registrar as rules
from medalliance.ca.messages import EnrollBody, GenCrlBody, RegisterBody, RevokeBody
from medalliance.ca.registrar import CaIdentity
from medalliance.ca.store import CaStore
from medalliance.ca.token import BasicCredentials, csr_public_key, verify_token
from medalliance.errors import CaAuthenticationFailed, InvalidArgument, NotFound
from medalliance.identity.ca import CertificateAuthority

log = logging.getLogger(__name__)

FABRIC_CA_VERSION = "1.5.15"  # the Fabric CA release whose REST API this answers as
# RFC 5280 CRLReason names, as Fabric CA accepts them in `revoke`.
REASONS = {
    "": 0,
    "unspecified": 0,
    "keycompromise": 1,
    "cacompromise": 2,
    "affiliationchanged": 3,
    "superseded": 4,
    "cessationofoperation": 5,
    "certificatehold": 6,
    "removefromcrl": 8,
    "privilegewithdrawn": 9,
    "aacompromise": 10,
}
# argon2id at OWASP's minimum (19 MiB, 2 passes): every enrolment hashes once, and the
# secrets are random one-time enrolment secrets, not people's passwords.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the enrollment ID is unknown, so both failures take the same time.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FabricCa:
    """A Fabric CA named `name` over `store`, issuing with `authority`."""

    def __init__(
        self,
        name: str,
        authority: CertificateAuthority,
        store: CaStore,
        *,
        max_enrollments: int = rules.UNLIMITED,
        cert_valid_days: int = 365,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.name = name
        self.authority = authority
        self._store = store
        self._max_enrollments = max_enrollments
        self._valid_days = cert_valid_days
        self._clock = clock
        self._lock = threading.Lock()

    def close(self) -> None:
        self._store.close()

    def bootstrap(self, enrollment_id: str, secret: str) -> bool:
        """Register the first registrar when the store has no identity yet; whether it did."""
        with self._lock:
            if not self._store.is_empty():
                return False
            self._store.add_identity(rules.bootstrap_registrar(enrollment_id), _HASHER.hash(secret))
            log.info("fabric ca bootstrapped", extra={"ca": self.name, "registrar": enrollment_id})
            return True

    # --- the REST API ---------------------------------------------------------------------------

    def cainfo(self) -> dict[str, Any]:
        return self._server_info()

    def enroll(self, credentials: BasicCredentials, body: EnrollBody) -> dict[str, Any]:
        """Issue an enrolment certificate for the CSR of an identity proving its secret."""
        self._check_ca_name(body.caname)
        self._check_profile(body.profile)
        with self._lock:
            found = self._store.identity(credentials.enrollment_id)
            stored_hash = found[1] if found else _DUMMY_HASH
            matches = _secret_matches(stored_hash, credentials.secret) and found is not None
            identity = rules.check_enroll(found[0] if found else None, secret_matches=matches)
            cert = self._issue(identity, body, count_enrollment=True)
        log.info("fabric ca enrolled", extra={"ca": self.name, "id": identity.enrollment_id})
        return {"Cert": _b64(cert), "ServerInfo": self._server_info()}

    def reenroll(self, caller: CaIdentity, body: EnrollBody) -> dict[str, Any]:
        """A new certificate for an authenticated caller's new CSR (no enrolment counted)."""
        self._check_ca_name(body.caname)
        self._check_profile(body.profile)
        with self._lock:
            cert = self._issue(caller, body, count_enrollment=False)
        log.info("fabric ca reenrolled", extra={"ca": self.name, "id": caller.enrollment_id})
        return {"Cert": _b64(cert), "ServerInfo": self._server_info()}

    def register(self, caller: CaIdentity, body: RegisterBody) -> dict[str, Any]:
        """Register a new identity; the result carries its secret (given or generated)."""
        self._check_ca_name(body.caname)
        identity = rules.check_register(caller, body.registration(), self._max_enrollments)
        secret = body.secret.get_secret_value() if body.secret else secrets.token_urlsafe(18)
        if not secret:
            raise InvalidArgument("an enrolment secret must not be empty; omit it to get one")
        with self._lock:
            self._store.add_identity(identity, _HASHER.hash(secret))
        log.info(
            "fabric ca registered",
            extra={"ca": self.name, "id": identity.enrollment_id, "by": caller.enrollment_id},
        )
        return {"secret": secret}

    def revoke(self, caller: CaIdentity, body: RevokeBody) -> dict[str, Any]:
        """Revoke an identity (and all its certificates) or one certificate by AKI and serial."""
        self._check_ca_name(body.caname)
        reason = REASONS.get(body.reason.lower().replace(" ", ""))
        if reason is None:
            raise InvalidArgument(f"revocation reason must be one of {', '.join(REASONS)}")
        if body.gencrl:
            rules.check_gencrl(caller)  # before any write: a refusal revokes nothing
        with self._lock:
            if body.serial:
                owner, serials = self._certificate_to_revoke(body)
                whole = False
            elif body.id:
                owner, whole = body.id, True
                serials = [c.serial_hex for c in self._store.certificates(owner)]
            else:
                raise InvalidArgument("revoke needs an enrollment `id`, or `aki` and `serial`")
            target = self._store.require(owner)
            rules.check_revoke(caller, target)
            done = self._store.revoke(
                owner, serials, whole_identity=whole, reason=reason, now=self._clock()
            )
            crl = self._crl() if body.gencrl else b""
        log.info(
            "fabric ca revoked",
            extra={"ca": self.name, "id": owner, "serials": done, "by": caller.enrollment_id},
        )
        aki = self._aki()
        return {
            "RevokedCerts": [{"Serial": s, "AKI": aki} for s in done],
            "CRL": _b64(crl) if crl else "",
        }

    def gencrl(self, caller: CaIdentity, body: GenCrlBody) -> dict[str, Any]:
        """The CA's CRL (PEM, base64 in the result) with every certificate it revoked."""
        self._check_ca_name(body.caname)
        rules.check_gencrl(caller)
        with self._lock:
            crl = self._crl()
        return {"CRL": _b64(crl)}

    def crl_pem(self) -> bytes:
        """The current CRL as PEM (for the channel's MSP: app/channel_update.py)."""
        with self._lock:
            return self._crl()

    def identities(self, caller: CaIdentity) -> dict[str, Any]:
        """Every identity the caller may manage (its types, within its affiliation)."""
        with self._lock:
            listed = [i for i in self._store.identities() if rules.can_manage(caller, i)]
        return {"identities": [self._info(i) for i in listed], "caname": self.name}

    def identity(self, caller: CaIdentity, enrollment_id: str) -> dict[str, Any]:
        """One identity; one answer for unknown and not-yours, so listing cannot enumerate."""
        with self._lock:
            found = self._store.identity(enrollment_id)
        if found is None or not rules.can_manage(caller, found[0]):
            raise NotFound(f"no identity {enrollment_id!r} that you may manage at this CA")
        return self._info(found[0])

    def authenticate(self, header: str, method: str, uri: str, body: bytes) -> CaIdentity:
        """The identity whose enrolment certificate signed this request.

        The certificate must be one this CA issued (its signature, and its serial in the store
        under the same enrollment ID), be valid now, and neither it nor its identity revoked.
        Raises `CaAuthenticationFailed` otherwise.
        """
        cert = verify_token(header, method, uri, body)
        try:
            cert.verify_directly_issued_by(self.authority.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CaAuthenticationFailed(
                f"authentication failure: the token's certificate is not issued by {self.name}"
            ) from exc
        now = self._clock()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CaAuthenticationFailed("authentication failure: the certificate has expired")
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        enrollment_id = str(names[0].value) if names else ""
        with self._lock:
            record = self._store.certificate(cert.serial_number)
            found = self._store.identity(enrollment_id)
        if record is None or record.enrollment_id != enrollment_id or found is None:
            raise CaAuthenticationFailed(
                f"authentication failure: {self.name} has no record of this certificate"
            )
        if record.revoked or found[0].revoked:
            raise CaAuthenticationFailed("authentication failure: the certificate is revoked")
        return found[0]

    # --- helpers --------------------------------------------------------------------------------

    def _issue(self, identity: CaIdentity, body: EnrollBody, *, count_enrollment: bool) -> bytes:
        key = csr_public_key(body.certificate_request, identity.enrollment_id)
        attributes = rules.certificate_attributes(identity, body.attribute_requests())
        serial = x509.random_serial_number()
        now = self._clock()
        cert_pem = self.authority.certify(
            key,
            identity.enrollment_id,
            node_ou=identity.type,
            now=now,
            attributes=attributes,
            valid_days=self._valid_days,
            serial_number=serial,
        )
        not_after = x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
        self._store.record_certificate(
            identity.enrollment_id,
            cert_pem.decode(),
            serial,
            not_after,
            count_enrollment=count_enrollment,
        )
        return cert_pem

    def _certificate_to_revoke(self, body: RevokeBody) -> tuple[str, list[str]]:
        if body.aki and body.aki.lower().lstrip("0") != self._aki().lstrip("0"):
            raise NotFound(f"AKI {body.aki} is not {self.name}'s; revoke at the issuing CA")
        try:
            serial = int(body.serial, 16)
        except ValueError:
            raise InvalidArgument("serial is the certificate's serial number in hex") from None
        record = self._store.certificate(serial)
        if record is None or (body.id and body.id != record.enrollment_id):
            raise NotFound(f"{self.name} issued no certificate {body.serial} to that identity")
        return record.enrollment_id, [record.serial_hex]

    def _crl(self) -> bytes:
        return self.authority.revoke(
            [serial for serial, _ in self._store.revoked_serials()], now=self._clock()
        )

    def _aki(self) -> str:
        ski = x509.SubjectKeyIdentifier.from_public_key(self.authority.certificate.public_key())
        return ski.digest.hex()

    def _server_info(self) -> dict[str, Any]:
        return {
            "CAName": self.name,
            "CAChain": _b64(self.authority.cert_pem),
            "IssuerPublicKey": "",  # no Idemix: Fabric CA sends these only when it has one
            "IssuerRevocationPublicKey": "",
            "Version": FABRIC_CA_VERSION,
        }

    def _info(self, identity: CaIdentity) -> dict[str, Any]:
        return {
            "id": identity.enrollment_id,
            "type": identity.type,
            "affiliation": identity.affiliation,
            "attrs": [
                {"name": a.name, "value": a.value, "ecert": a.ecert} for a in identity.attributes
            ],
            "max_enrollments": identity.max_enrollments,
            # not in Fabric CA's IdentityInfo (its clients ignore it): the operator pages show it
            "revoked": identity.revoked,
            "caname": self.name,
        }

    def _check_ca_name(self, caname: str) -> None:
        if caname not in ("", self.name):
            raise NotFound(f"CA {caname!r} does not exist here; this server is {self.name!r}")

    @staticmethod
    def _check_profile(profile: str) -> None:
        if profile:
            raise InvalidArgument(
                f"enrolment profile {profile!r} is not supported: this CA issues enrolment "
                "certificates only; TLS certificates come from the organisation's TLS CA"
            )


def _secret_matches(stored_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
