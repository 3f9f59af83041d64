"""The operator's view of the platform: nodes and their health, channel members, contracts.

Nodes: on a network of processes, each node of the layout answers on its operations endpoint
(`/status`, node/launcher.py, as `network status` shows it); on the embedded demo the nodes are
in this process and their ledgers say. Channel members come from the channel's configuration in
force — the config block the last block's metadata points at, read from the operator's own
peer — so a membership vote shows here once committed. Contracts are the lifecycle's committed
definitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fabric_protos.common import common_pb2
from fabric_protos.peer import policy_pb2
from google.protobuf.message import DecodeError

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.contracts.lifecycle import LIFECYCLE_NAMESPACE, committed_definition
from medalliance.errors import InvalidArgument
from medalliance.identity.policy import format_policy
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.commit_certificate import SIGNATURES
from medalliance.ledger.config_update import is_config_block
from medalliance.node import launcher
from medalliance.web.services.contract_refusal import translated
from medalliance.web.services.operator_staff import require_operator
from medalliance.web.services.peer_height import embedded_of, on_alliance_thread, peer_height
from medalliance.web.staff import Staff

__all__ = [
    "ChannelMembers",
    "ContractRow",
    "MemberRow",
    "NodeRow",
    "channel_members",
    "contracts",
    "latest_config",
    "latest_config_block",
    "nodes",
]

ADMIN = "Admin"


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    organization: str
    role: str  # peer | orderer
    endpoint: str
    health: str  # up | starting | down | in-process
    height: int | None


@dataclass(frozen=True, slots=True)
class MemberRow:
    msp_id: str
    alliance_type: str  # regulator | tertiary | secondary | orderer
    regulator: str
    parent: str
    endpoints: tuple[str, ...]
    orders: bool  # runs ordering nodes


@dataclass(frozen=True, slots=True)
class ConsenterRow:
    id: int
    name: str
    endpoint: str
    msp_id: str


@dataclass(frozen=True, slots=True)
class ChannelMembers:
    channel: str
    sequence: int
    config_block: int
    members: tuple[MemberRow, ...]
    consenters: tuple[ConsenterRow, ...]
    batch_max_count: int
    batch_timeout_ms: int


@dataclass(frozen=True, slots=True)
class ContractRow:
    name: str
    version: str
    sequence: int
    endorsement_policy: str
    deregistered: bool


def nodes(network: AllianceNetwork, staff: Staff) -> tuple[NodeRow, ...]:
    """Every node of the network with its health and block height."""
    require_operator(staff)
    embedded = embedded_of(network)
    if embedded is not None:
        rows = [
            NodeRow(
                peer.name,
                peer.msp_id,
                "peer",
                "(in process)",
                "in-process",
                peer_height(network, peer.msp_id),
            )
            for peer in embedded.network.peers_of(embedded.channel)
        ]
        for org in network.layout.config.organizations:
            for node in org.orderers:
                rows.append(NodeRow(f"{node.name}.{org.domain}", org.msp_id, "orderer",
                                    "(in process)", "in-process", None))  # fmt: skip
        return tuple(rows)
    return tuple(
        NodeRow(
            str(row["name"]),
            str(row["organization"]),
            str(row["role"]),
            str(row["endpoint"]),
            str(row["health"]),
            row["height"] if isinstance(row["height"], int) else None,
        )
        for row in launcher.status(network.layout)
    )


def latest_config_block(network: AllianceNetwork, msp_id: str) -> common_pb2.Block:
    """The config block in force at the organisation's peer (the one the last block's
    metadata points at)."""
    height = peer_height(network, msp_id)
    (last,) = network.blocks(msp_id, height - 1, height - 1)
    number = _last_config_index(last)
    if number is None:
        # No orderer metadata to point at it: walk back to the newest config block.
        number = next(
            n
            for n in range(height - 1, -1, -1)
            if is_config_block(next(iter(network.blocks(msp_id, n, n))))
        )
    (block,) = network.blocks(msp_id, number, number)
    return block


def latest_config(network: AllianceNetwork, msp_id: str) -> tuple[int, ChannelConfig]:
    """The channel's configuration in force at the organisation's peer, and its block."""
    block = latest_config_block(network, msp_id)
    return int(block.header.number), ChannelConfig.from_block(block)


def channel_members(network: AllianceNetwork, staff: Staff) -> ChannelMembers:
    msp_id = require_operator(staff)
    number, config = latest_config(network, msp_id)
    orderers = set(config.orderer_msp_ids)
    members = tuple(
        MemberRow(
            o.msp_id,
            o.alliance_type,
            o.regulator or "",
            o.parent or "",
            o.endpoints,
            o.msp_id in orderers,
        )
        for o in config.application_orgs
    )
    consenters = tuple(
        ConsenterRow(c.id, c.name, c.endpoint, c.msp_id) for c in config.consenter_set
    )
    return ChannelMembers(
        config.channel_id, config.sequence, number, members, consenters,
        config.batch_max_count, config.batch_timeout_ms,
    )  # fmt: skip


def contracts(network: AllianceNetwork, staff: Staff) -> tuple[ContractRow, ...]:
    """The committed contract definitions of the channel (lifecycle), by name."""
    msp_id = require_operator(staff)
    raw = translated(
        lambda: network.evaluate(msp_id, ADMIN, LIFECYCLE_NAMESPACE, "QueryChaincodeDefinitions")
    )
    rows = []
    for item in json.loads(raw):
        name = str(item["name"])
        rows.append(
            ContractRow(
                name,
                str(item["version"]),
                int(item["sequence"]),
                _policy_text(network, msp_id, name, item.get("policy_reference")),
                bool(item["deregistered"]),
            )
        )
    return tuple(sorted(rows, key=lambda r: r.name))


def _policy_text(network: AllianceNetwork, msp_id: str, name: str, reference: object) -> str:
    if reference:
        return f"channel policy {reference}"
    embedded = embedded_of(network)
    if embedded is not None:
        peer = next(p for p in embedded.network.peers_of(embedded.channel) if p.msp_id == msp_id)
        state = peer.channel(embedded.channel).state
        definition = on_alliance_thread(network, lambda: committed_definition(state, name))
        if definition is not None:
            policy = policy_pb2.ApplicationPolicy.FromString(definition.endorsement_policy)
            if policy.HasField("signature_policy"):
                try:
                    return format_policy(policy.signature_policy)
                except InvalidArgument:
                    return "signature policy"
    # Over the network the lifecycle answers only a reference; the configured text is what
    # the network was deployed with.
    for channel in network.layout.config.channels:
        for spec in channel.contracts:
            if channel.name == network.channel and spec.name == name:
                return network.layout.config.endorsement_policy(channel, spec)
    return "signature policy"


def _last_config_index(block: common_pb2.Block) -> int | None:
    try:
        metadata = common_pb2.Metadata.FromString(block.metadata.metadata[SIGNATURES])
        info = common_pb2.OrdererBlockMetadata.FromString(metadata.value)
    except (DecodeError, IndexError):
        return None
    if not metadata.value:
        return None
    return int(info.last_config.index)
