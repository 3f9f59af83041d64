"""What every node process loads first: its place in the config, addresses, keys and TLS."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medalliance.errors import NotFound
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.network.tls import NodeTls
from medalliance.node.bootstrap import NODES, NetworkLayout
from medalliance.node.config import NodeConfig, OrganizationConfig
from medalliance.node.orderer_link import OrdererEndpoint


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class NodeMaterial:
    """One node of an initialised network: `host` is `<name>.<domain>`."""

    org: OrganizationConfig
    host: str
    address: str  # advertised, host:port
    listen_address: str
    operations_address: str  # where the operations endpoint binds
    cluster_address: str  # ordering nodes: where the consensus service binds (mutual TLS)
    data_dir: Path  # nodes/<host>/
    signer: Signer
    tls: NodeTls

    @classmethod
    def load(
        cls,
        layout: NetworkLayout,
        org: OrganizationConfig,
        name: str,
        role: Literal["peer", "orderer"],
    ) -> NodeMaterial:
        nodes = org.peers if role == "peer" else org.orderers
        node = next((n for n in nodes if n.name == name), None)
        if node is None:
            raise NotFound(f"{org.name} runs no {role} {name!r}")
        crypto = (layout.peer_dir if role == "peer" else layout.orderer_dir)(org.msp_id, name)
        host = f"{name}.{org.domain}"
        return cls(
            org=org,
            host=host,
            address=node.endpoint,
            listen_address=node.listen_endpoint,
            operations_address=node.operations_listen_endpoint,
            cluster_address=node.cluster_listen_endpoint,
            data_dir=layout.directory / NODES / host,
            signer=load_signer(crypto / "msp", org.msp_id),
            tls=NodeTls.load(crypto / "tls", trusted_tls_cas(layout)),
        )


def trusted_tls_cas(layout: NetworkLayout) -> dict[str, bytes]:
    """Each organisation's TLS CA certificate, by MSP id."""
    out = {}
    for org in layout.config.organizations:
        certs = sorted((layout.org_msp_dir(org.msp_id) / "tlscacerts").glob("*.pem"))
        if not certs:
            raise NotFound(f"{org.msp_id} has no TLS CA certificate in its msp/tlscacerts")
        out[org.msp_id] = certs[0].read_bytes()
    return out


def orderer_endpoints(layout: NetworkLayout) -> list[OrdererEndpoint]:
    """Every ordering node's client port (Broadcast and Deliver), never its cluster port."""
    return [
        OrdererEndpoint(org.msp_id, f"{node.name}.{org.domain}", node.endpoint)
        for org in layout.config.orderer_organizations()
        for node in org.orderers
    ]


def consensus_endpoints(layout: NetworkLayout) -> dict[str, NodeConfig]:
    """Every ordering node of the network folder by `<name>.<domain>`."""
    return {
        f"{node.name}.{org.domain}": node
        for org in layout.config.orderer_organizations()
        for node in org.orderers
    }


def consensus_endpoint(mapped: str, node: NodeConfig | None) -> str:
    """Where to dial a consenter's consensus service: the endpoint its consenter mapping names,
    except that a channel created before ordering nodes had cluster ports names the node's
    client port there, which asks for no client certificate and so refuses consensus; the
    node's cluster port is dialled instead."""
    if node is not None and mapped == node.endpoint:
        return node.cluster_endpoint
    return mapped
