"""Identity: certificate authorities, MSPs, signatures and signature policies (Fabric's rules).

The platform crypto module (architecture §2): depends only on `cryptography` and Fabric protos.
"""

from medalliance.identity.ca import (
    ATTRIBUTE_EXTENSION_OID,
    CertificateAuthority,
    IssuedCertificate,
    NodeOU,
)
from medalliance.identity.cryptogen import OrgSpec, UserSpec, generate_org, load_signer
from medalliance.identity.msp import Identity, Msp, MspManager
from medalliance.identity.policy import (
    SignedData,
    evaluate_implicit_meta,
    evaluate_signature_policy,
    format_policy,
    implicit_meta_threshold,
    parse_policy,
)
from medalliance.identity.signing import Signer, serialize_identity, sha256, verify_signature

__all__ = [
    "ATTRIBUTE_EXTENSION_OID",
    "CertificateAuthority",
    "Identity",
    "IssuedCertificate",
    "Msp",
    "MspManager",
    "NodeOU",
    "OrgSpec",
    "SignedData",
    "Signer",
    "UserSpec",
    "evaluate_implicit_meta",
    "evaluate_signature_policy",
    "format_policy",
    "generate_org",
    "implicit_meta_threshold",
    "load_signer",
    "parse_policy",
    "serialize_identity",
    "sha256",
    "verify_signature",
]
