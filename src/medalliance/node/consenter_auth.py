"""Who may call an ordering node's consensus service: the consenters of the channel, by TLS.

Mutual TLS proves only that a caller holds a certificate of some organisation's TLS CA — every
member peer, user and admin does. Like Fabric's cluster service, an ordering node therefore
accepts `Step` and `Forward` only from a caller whose client certificate is one of the client
TLS certificates of the channel's consenter mapping in force (`Orderers` in the channel
config). Certificates are compared as DER, so PEM line breaks do not matter.

Pure: no I/O; the caller's certificate comes from the gRPC auth context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from medalliance.ledger.commit_certificate import Consenter

UNKNOWN_MSP = "unknown"


def consenter_of(
    consenters: Sequence[Consenter], client_cert_pem: bytes | None
) -> Consenter | None:
    """The consenter whose client TLS certificate the caller presented, or None."""
    presented = _der(client_cert_pem)
    if presented is None:
        return None
    for consenter in consenters:
        if consenter.client_tls_cert and _der(consenter.client_tls_cert) == presented:
            return consenter
    return None


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


def _der(pem: bytes | None) -> bytes | None:
    if not pem:
        return None
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except ValueError:
        return None
