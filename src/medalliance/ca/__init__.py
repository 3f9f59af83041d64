"""Fabric CA: a certificate authority server per organisation speaking Fabric CA's REST API.

`registrar` (the registrar model, pure), `token` (request authentication and CSRs, pure),
`store` (identities, certificates, revocations on SQLite or PostgreSQL), `authority` (one CA:
core + store + the organisation's CA key), `server` (the HTTPS API), `client` (the operator's
side: enrol, register, revoke, list; Fabric CA's MSP folder layout). docs/fabric-ca.md.
"""

from medalliance.ca.authority import FABRIC_CA_VERSION, FabricCa
from medalliance.ca.registrar import (
    Attribute,
    AttributeRequest,
    CaIdentity,
    Registration,
    bootstrap_registrar,
)
from medalliance.ca.store import CaStore

__all__ = [
    "FABRIC_CA_VERSION",
    "Attribute",
    "AttributeRequest",
    "CaIdentity",
    "CaStore",
    "FabricCa",
    "Registration",
    "bootstrap_registrar",
]
