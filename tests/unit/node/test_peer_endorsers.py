"""A peer's gateway asks `PeerNode.peers_for` on every Endorse: its answer is built once per
channel configuration, and never offers an organisation's peers on a channel it is not in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.unit.node.test_bootstrap import CONFIG, NOW

from medalliance.ledger.block import parse_block
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.node.bootstrap import init_network
from medalliance.node.endorsers import LocalEndorser, RemoteEndorser
from medalliance.node.peer_node import PeerNode


def test_peers_are_planned_per_channel_configuration(tmp_path: Path) -> None:
    layout = init_network(CONFIG, tmp_path / "net", now=NOW)
    org = layout.config.organization("Reg")

    async def scenario() -> None:
        node = PeerNode(layout, org, "peer0")
        alliance = node.peers_for("alliance")
        assert list(alliance) == ["RegMSP", "HospAMSP"]  # this peer's organisation first
        assert isinstance(alliance["RegMSP"][0], LocalEndorser)
        assert isinstance(alliance["HospAMSP"][0], RemoteEndorser)
        assert node.peers_for("alliance") is alliance  # kept for the configuration
        # Hostile: HospA is no member of audit; the alliance answer must not leak into it.
        assert list(node.peers_for("audit")) == ["RegMSP"]
        # A configuration update brings a new configuration object: the answer is rebuilt from
        # its members (here: audit's, without HospA), and the remote endorser is reused.
        ledger = node.peer.channel("alliance")
        ledger.config = node.peer.channel("audit").config
        assert list(node.peers_for("alliance")) == ["RegMSP"]

    asyncio.run(scenario())


def test_contracts_see_the_organisations_of_the_current_configuration(tmp_path: Path) -> None:
    """The endorser keeps the organisations it hands to contracts per configuration object,
    read-only (every proposal's contract shares them): a new configuration is read afresh."""
    layout = init_network(CONFIG, tmp_path / "net", now=NOW)

    async def scenario() -> None:
        node = PeerNode(layout, layout.config.organization("Reg"), "peer0")
        endorser = node.peer._endorser
        alliance = node.peer.channel("alliance").config
        organizations = endorser._organizations_of(alliance)
        assert set(organizations) == {"RegMSP", "HospAMSP"}
        assert endorser._organizations_of(alliance) is organizations
        with pytest.raises(TypeError):
            organizations["EvilMSP"] = organizations["RegMSP"]  # type: ignore[index]
        genesis = parse_block(layout.genesis_block_path("alliance").read_bytes())
        updated = ChannelConfig.from_block(genesis)  # equal members, another object
        assert endorser._organizations_of(updated) is not organizations
        assert set(endorser._organizations_of(node.peer.channel("audit").config)) == {"RegMSP"}

    asyncio.run(scenario())
