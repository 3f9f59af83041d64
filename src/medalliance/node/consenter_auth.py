"""Who may call an ordering node's consensus service: the consenters of the channel, by TLS.

Mutual TLS proves only that a caller holds a certificate of some organisation's TLS CA — every
member peer, user and admin does. Like Fabric's cluster service, an ordering node therefore
accepts `Step` and `Forward` only from a caller whose client certificate is one of the client
TLS certificates of the channel's consenter mapping in force (`Orderers` in the channel
config). Certificates are compared as DER, so PEM line breaks do not matter.

Every consensus call is checked, so the PEM → DER conversions are remembered: per PEM bytes
presented (a bounded LRU: a member minting certificates only evicts entries, which are then
parsed again as before) and per consenter set. The memo maps exact bytes to their DER; a
certificate differing in one byte is another key, parsed and compared afresh.

Pure: no I/O; the caller's certificate comes from the gRPC auth context.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from medalliance.ledger.commit_certificate import Consenter

UNKNOWN_MSP = "unknown"
PRESENTED_KEPT = 64  # distinct caller certificates remembered (the consenters, with room)
SETS_KEPT = 8  # consenter sets remembered (one per channel and configuration in force)


def consenter_of(
    consenters: Sequence[Consenter], client_cert_pem: bytes | None
) -> Consenter | None:
    """The consenter whose client TLS certificate the caller presented, or None."""
    if not client_cert_pem:
        return None
    presented = _der(client_cert_pem)
    if presented is None:
        return None
    index = _index(tuple(c.client_tls_cert for c in consenters)).get(presented)
    return None if index is None else consenters[index]


def msp_of(client_cert_pem: bytes | None, tls_cas: Mapping[str, bytes]) -> str:
    """The MSP whose TLS CA issued the caller's certificate (for the log), or "unknown"."""
    try:
        issuer = x509.load_pem_x509_certificate(client_cert_pem or b"").issuer
    except ValueError:
        return UNKNOWN_MSP
    for msp_id, pem in sorted(tls_cas.items()):
        try:
            authorities = x509.load_pem_x509_certificates(pem)
        except ValueError:
            continue
        if any(ca.subject == issuer for ca in authorities):
            return msp_id
    return UNKNOWN_MSP


@functools.lru_cache(maxsize=SETS_KEPT)
def _index(client_certs: tuple[bytes, ...]) -> Mapping[bytes, int]:
    """DER of each consenter's client certificate → its position (the first, if repeated)."""
    found: dict[bytes, int] = {}
    for position, pem in enumerate(client_certs):
        der = _der(pem) if pem else None
        if der is not None:
            found.setdefault(der, position)
    return found


@functools.lru_cache(maxsize=PRESENTED_KEPT)
def _der(pem: bytes) -> bytes | None:
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except ValueError:
        return None
