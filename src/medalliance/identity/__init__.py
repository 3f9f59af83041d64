"""Identity: certificate authorities, MSPs, signatures and signature policies (Fabric's rules)."""

from medalliance.identity.ca import CertificateAuthority, IssuedCertificate, NodeOU
from medalliance.identity.msp import Identity, Msp, MspManager
from medalliance.identity.policy import (
    SignedData,
    evaluate_implicit_meta,
    evaluate_signature_policy,
    format_policy,
    parse_policy,
)
from medalliance.identity.signing import Signer, verify_signature

__all__ = [
    "CertificateAuthority",
    "Identity",
    "IssuedCertificate",
    "Msp",
    "MspManager",
    "NodeOU",
    "SignedData",
    "Signer",
    "evaluate_implicit_meta",
    "evaluate_signature_policy",
    "format_policy",
    "parse_policy",
    "verify_signature",
]
