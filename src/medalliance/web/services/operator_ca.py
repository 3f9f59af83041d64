"""The organisation's Fabric CA for its operator (docs/fabric-ca.md, docs/web.md §15): list the
identities, register one, revoke an identity or one certificate, read the CA's CRL, and propose
that CRL to the channel's admins as a membership vote.

The web server talks to its organisation's CA over HTTPS (the URL and TLS CA of the connection
profile: `app/org_ca.ca_client`) as the CA's bootstrap registrar (`ca.bootstrap_user`, `admin`
by default), whose enrolment `identity enroll admin` wrote once into the organisation's folder
(`users/admin@<domain>/msp`). The web app never sees the bootstrap secret: it signs each request
with that enrolment's key (Fabric CA's token). An enrolment secret the CA generates for a new
identity is returned to the caller once and is neither logged nor kept here; the CA stores only
its hash. Nothing here touches patient data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.org_ca import BOOTSTRAP_SECRET_FILE, CA_SERVER, ca_client, ca_settings
from medalliance.app.org_ca import registrar as load_registrar
from medalliance.ca.authority import REASONS
from medalliance.ca.client import CaClient, Enrollment
from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed
from medalliance.web.services.operator_staff import require_operator
from medalliance.web.staff import Staff

__all__ = ["ALLIANCE_ROLES", "IDENTITY_TYPES", "REVOCATION_REASONS", "CaIdentities",
           "CaIdentityRow", "CaRegistrarMissing", "CrlEntry", "CrlView", "Registered",
           "Revoked", "crl", "crl_pem", "identities", "register", "revoke"]  # fmt: skip

log = logging.getLogger(__name__)

# The alliance roles a registrar may give (the `role` attribute the contracts read); the
# operator is an organisation's Admin, not a CA role.
ALLIANCE_ROLES = ("doctor", "clerk", "reviewer", "auditor")
IDENTITY_TYPES = ("client", "admin", "peer", "orderer")
REVOCATION_REASONS = tuple(r for r in REASONS if r)


class CaRegistrarMissing(PreconditionFailed):
    """The CA's registrar has not been enrolled into the organisation's folder."""

    def __init__(self, enrollment_id: str, org: str, secret_hint: str) -> None:
        super().__init__(
            f"the web server acts at the CA as its registrar {enrollment_id!r}, which is not "
            f"enrolled in this network folder yet; once, on this host: medalliance identity "
            f"enroll {enrollment_id} --dir DIR --org {org} --secret-file {secret_hint}"
        )


@dataclass(frozen=True, slots=True)
class CaIdentityRow:
    id: str
    type: str
    affiliation: str
    role: str | None
    max_enrollments: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class CaIdentities:
    ca_name: str
    url: str
    registrar: str
    identities: tuple[CaIdentityRow, ...]


@dataclass(frozen=True, slots=True)
class Registered:
    id: str
    # The CA's generated secret, for the caller to show once; None when the operator chose it.
    secret: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class Revoked:
    id: str
    serials: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CrlEntry:
    serial: str  # hex, as Fabric CA writes serials
    revoked_at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class CrlView:
    ca_name: str
    this_update: str
    entries: tuple[CrlEntry, ...]


def identities(network: AllianceNetwork, staff: Staff) -> CaIdentities:
    """Every identity the registrar may manage, as the CA lists them."""
    client, registrar = _connect(network, staff)
    rows = tuple(_row(i) for i in client.identities(registrar))
    return CaIdentities(client.ca_name, client.url, registrar.enrollment_id, rows)


def register(
    network: AllianceNetwork,
    staff: Staff,
    enrollment_id: str,
    *,
    type: str,
    role: str | None,
    affiliation: str = "",
    max_enrollments: int = 0,
    secret: str | None = None,
) -> Registered:
    """Register a new identity with its alliance `role` (one of `ALLIANCE_ROLES`, or None).
    The CA's refusals (already registered, not allowed) raise their typed errors."""
    if role is not None and role not in ALLIANCE_ROLES:
        raise InvalidArgument(f"the role must be one of {', '.join(ALLIANCE_ROLES)}")
    if type not in IDENTITY_TYPES:
        raise InvalidArgument(f"the type must be one of {', '.join(IDENTITY_TYPES)}")
    client, registrar = _connect(network, staff)
    issued = client.register(
        registrar,
        enrollment_id,
        type=type,
        role=role,
        affiliation=affiliation,
        max_enrollments=max_enrollments,
        secret=secret,
    )
    log.info(
        "operator registered an identity at the CA",
        extra={"ca": client.ca_name, "id": enrollment_id, "by": staff.username},
    )
    return Registered(enrollment_id, None if secret is not None else issued)


def revoke(
    network: AllianceNetwork,
    staff: Staff,
    *,
    enrollment_id: str = "",
    serial_hex: str = "",
    reason: str = "",
) -> Revoked:
    """Revoke an identity and all its certificates, or one certificate by its serial (hex).
    Peers learn of it only through the channel's CRL: see `crl_pem` and the votes."""
    if bool(enrollment_id) == bool(serial_hex):
        raise InvalidArgument("name either the identity to revoke or one certificate's serial")
    if reason and reason not in REVOCATION_REASONS:
        raise InvalidArgument(f"the reason must be one of {', '.join(REVOCATION_REASONS)}")
    client, registrar = _connect(network, staff)
    result = client.revoke(
        registrar, enrollment_id=enrollment_id, serial_hex=serial_hex.lower(), reason=reason
    )
    serials = tuple(str(r["Serial"]) for r in result.get("RevokedCerts", ()))
    log.info(
        "operator revoked at the CA",
        extra={"ca": client.ca_name, "id": enrollment_id, "serials": serials, "by": staff.username},
    )
    return Revoked(enrollment_id or serial_hex, serials)


def crl_pem(network: AllianceNetwork, staff: Staff) -> bytes:
    """The CA's current CRL (PEM), signed by the organisation's CA."""
    client, registrar = _connect(network, staff)
    return client.gencrl(registrar)


def crl(network: AllianceNetwork, staff: Staff) -> CrlView:
    """The serials on the CA's CRL, oldest revocation first."""
    client, registrar = _connect(network, staff)
    parsed = x509.load_pem_x509_crl(client.gencrl(registrar))
    entries = sorted(
        (CrlEntry(format(r.serial_number, "x"), r.revocation_date_utc.isoformat()) for r in parsed),
        key=lambda e: (e.revoked_at, e.serial),
    )
    return CrlView(client.ca_name, parsed.last_update_utc.isoformat(), tuple(entries))


def _connect(network: AllianceNetwork, staff: Staff) -> tuple[CaClient, Enrollment]:
    """The operator organisation's CA client and its registrar's enrolment.

    `PreconditionFailed` when the organisation runs no CA or its registrar is not enrolled."""
    msp_id = require_operator(staff)
    layout = network.layout
    org, settings = ca_settings(layout, msp_id)
    try:
        registrar = load_registrar(layout, org.name, settings.bootstrap_user)
    except NotFound:
        hint = (
            "<its secret file>"
            if settings.bootstrap_secret
            else f"{layout.org_dir(org.msp_id) / CA_SERVER / BOOTSTRAP_SECRET_FILE}"
        )
        raise CaRegistrarMissing(settings.bootstrap_user, org.name, hint) from None
    return ca_client(layout, org.name), registrar


def _row(info: dict[str, Any]) -> CaIdentityRow:
    attrs = info.get("attrs") or []
    role = next((str(a.get("value")) for a in attrs if a.get("name") == "role"), None)
    return CaIdentityRow(
        id=str(info.get("id", "")),
        type=str(info.get("type", "")),
        affiliation=str(info.get("affiliation", "")),
        role=role,
        max_enrollments=int(info.get("max_enrollments", 0)),
        revoked=bool(info.get("revoked", False)),
    )
