"""Fabric common connection profiles: how an organisation's applications reach its peers.

One per peer organisation, as Fabric's test network writes them
(`organizations/peerOrganizations/<domain>/connection-<org>.{json,yaml}`), so Fabric's sample
applications and Caliper find the endpoint, TLS CA and host-name override where they look, and
an organisation's Fabric CA under `certificateAuthorities` (as Fabric's test network lists it).
"""

from __future__ import annotations

from typing import Any

from medalliance.node.config import NetworkConfig, OrganizationConfig


def connection_profile(
    network: NetworkConfig, org: OrganizationConfig, tls_ca_pem: bytes
) -> dict[str, Any]:
    peers = {}
    for node in org.peers:
        host = f"{node.name}.{org.domain}"
        peers[host] = {
            "url": f"grpcs://{node.endpoint}",
            "tlsCACerts": {"pem": tls_ca_pem.decode()},
            "grpcOptions": {"ssl-target-name-override": host, "hostnameOverride": host},
        }
    profile: dict[str, Any] = {
        "name": f"{network.name}-{org.name.lower()}",
        "version": "1.0.0",
        "client": {
            "organization": org.name,
            "connection": {"timeout": {"peer": {"endorser": "300"}}},
        },
        "organizations": {org.name: {"mspid": org.msp_id, "peers": list(peers)}},
        "peers": peers,
    }
    if org.ca is not None:
        # As Fabric's test network lists its CAs: the server certificate is from the org's TLS CA.
        host = f"ca.{org.domain}"
        profile["organizations"][org.name]["certificateAuthorities"] = [host]
        profile["certificateAuthorities"] = {
            host: {
                "url": f"https://{org.ca.endpoint}",
                "caName": org.ca_name,
                "tlsCACerts": {"pem": [tls_ca_pem.decode()]},
                "httpOptions": {"verify": True},
            }
        }
    return profile


def profile_file_stem(org: OrganizationConfig) -> str:
    return f"connection-{org.name.lower()}"
