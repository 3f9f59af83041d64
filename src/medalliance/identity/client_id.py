"""A client's identity as Fabric's chaincode libraries name it: `x509::<subject>::<issuer>`.

Fabric's contract APIs (`ClientIdentity.GetID`, `ctx.clientIdentity.getID()`) identify the
caller by the distinguished names of its certificate and of the certificate's issuer, so the
name survives a renewal of the certificate. Contracts store it (asset-transfer-private-data
records an asset's owner this way), so ours must spell it byte for byte as Fabric's do: the RFC
2253-style string Go's `pkix.Name` yields — the attributes Go knows, in Go's fixed order (most
specific first), several values of one attribute joined by "+", special characters escaped.
Attributes Go does not keep in a parsed name (e.g. e-mail address) are left out, as in Fabric.
Pure: no I/O.

Walking a certificate's names costs more than the rest of a simple contract call, and every
proposal asks for its creator's id: the ids are kept per certificate (equal certificates are
equal byte for byte, so one certificate's id is never another's), bounded by `IDS_KEPT`.
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.x509.oid import NameOID

# Go's `Name.ToRDNSequence` order, reversed by Fabric's `getDN`: the most specific first.
_ORDER = (
    (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
    (NameOID.COMMON_NAME, "CN"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.POSTAL_CODE, "POSTALCODE"),
    (NameOID.STREET_ADDRESS, "STREET"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST"),
    (NameOID.COUNTRY_NAME, "C"),
)
# Go keeps one common name and one serial number (the last it meets); lists for the others.
_SINGLE = {NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME}
_SPECIAL = frozenset(',+"\\<>;')
# Distinct certificates whose ids are kept: a few per client of a busy peer; the least recently
# used is dropped first, so a flood of new certificates costs only recomputation.
IDS_KEPT = 1024


def client_id(certificate: x509.Certificate) -> str:
    """The caller's id as Fabric's `GetID` returns it once base64-decoded."""
    return _client_id(certificate)


@functools.lru_cache(maxsize=IDS_KEPT)
def _client_id(certificate: x509.Certificate) -> str:
    return (
        f"x509::{distinguished_name(certificate.subject)}::{distinguished_name(certificate.issuer)}"
    )


def distinguished_name(name: x509.Name) -> str:
    """`name` as Fabric's chaincode libraries print it (see the module docstring)."""
    rdns: list[str] = []
    for oid, label in _ORDER:
        values = [str(a.value) for a in name.get_attributes_for_oid(oid)]
        if oid in _SINGLE:
            values = values[-1:]
        # Several values of one attribute form one multi-valued RDN, in the certificate's order.
        if values:
            rdns.append("+".join(f"{label}={_escape(v)}" for v in values))
    return ",".join(rdns)


def _escape(value: str) -> str:
    out: list[str] = []
    last = len(value) - 1
    for index, char in enumerate(value):
        edge = (index == 0 and char in " #") or (index == last and char == " ")
        out.append("\\" + char if edge or char in _SPECIAL else char)
    return "".join(out)
