"""A one-consenter channel's host in process: a block that does not fit is never stored, and a
failed core is restarted and reported, never a silent stop (issue 11, item 8).

Real block store and hard-state log in a temporary folder; no sockets (sends go nowhere).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from tests.conftest import NOW, make_org

from medalliance.consensus.inputs import MessageReceived
from medalliance.consensus.messages import Certificate, Decision, Kind, Value, Vote
from medalliance.identity.signing import Signer
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import (
    ChannelConfig,
    ChannelDefinition,
    OrgDefinition,
    genesis_block,
)
from medalliance.ledger.commit_certificate import Consenter
from medalliance.network.block_feed import BlockFeed
from medalliance.node import bft_channel
from medalliance.node.bft_channel import BftChannel
from medalliance.node.consensus_wire import encode

ORDERERS = make_org("OrdMSP")
MEMBERS = make_org("Org1MSP")
SIGNER = ORDERERS.signer("orderer0", ou="orderer")
WAIT_S = 10.0


def genesis(signers: tuple[Signer, ...] = (SIGNER,)) -> common_pb2.Block:
    """Channel "ch" ordered by one consenter per signer (ids 1, 2, ...; ports 7050, 7051, ...)."""
    consenters = tuple(
        Consenter(i + 1, f"orderer{i}", "127.0.0.1", 7050 + i, "OrdMSP", s.serialized_identity)
        for i, s in enumerate(signers)
    )
    definition = ChannelDefinition(
        channel_id="ch",
        application_orgs=(OrgDefinition("Org1MSP", MEMBERS.msp, "tertiary", None, None, ()),),
        orderer_orgs=(OrgDefinition("OrdMSP", ORDERERS.msp, "orderer", None, None, ()),),
        consenters=tuple(f"127.0.0.1:{c.port}" for c in consenters),
        consenter_set=consenters,
    )
    return genesis_block(definition, timestamp_ms=1_764_331_200_000)


def envelope(tx_id: str) -> bytes:
    channel_header = common_pb2.ChannelHeader(channel_id="ch", tx_id=tx_id)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=channel_header.SerializeToString())
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


def decision(channel: BftChannel, *, swap_body: bool) -> Decision:
    """DECISION(1) certified by the only consenter; with `swap_body`, beside another body."""
    block = new_block(1, channel.store.last_header_hash, [envelope("tx-1")])
    value_id = header_hash(block.header)
    if swap_body:
        del block.data.data[:]
        block.data.data.append(envelope("tx-evil"))
    name = channel.name
    vote = Vote(Kind.PRECOMMIT, "ch", 1, 0, value_id, name)
    signed = Vote(Kind.PRECOMMIT, "ch", 1, 0, value_id, name, SIGNER.sign(vote.signed_bytes()))
    return Decision(
        "ch", 1, Value(value_id, block.SerializeToString()), Certificate((signed,)), name
    )


def one_consenter_channel(
    tmp_path: Path, forward: Callable[[list[bytes]], None]
) -> tuple[BftChannel, BlockStore]:
    """The channel of `genesis()` on its only consenter, over a fresh store; sends go nowhere."""
    block = genesis()
    config = ChannelConfig.from_block(block)
    store = BlockStore.open(tmp_path / "blocks")
    store.append(block)
    channel = BftChannel(
        config=config,
        store=store,
        feed=BlockFeed(store.height),
        directory=tmp_path,
        name=config.consenter_set[0].name,
        signer=SIGNER,
        send=lambda to, data: None,
        forward=forward,
        now=lambda: NOW,
    )
    return channel, store


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def test_a_wrong_body_is_refused_a_failed_core_restarts_and_repeated_failures_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bft_channel, "RESTART_DELAY_MAX_S", 0.2)  # same rule, shorter test
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    channel, store = one_consenter_channel(tmp_path, lambda envelopes: None)
    name = channel.name
    task = channel.start()
    try:
        # on the wire: dropped by the inbox, counted, never decided
        channel.receive(encode(decision(channel, swap_body=True)), name)
        assert channel.dropped["bad-block"] == 1
        # past the inbox (as the bug did): the host refuses to store it and the core restarts
        for failures in (1, 2, 3):
            channel._inbox.push(MessageReceived(decision(channel, swap_body=True)))
            await until(lambda f=failures: channel.health.failures == f, f"failure {failures}")  # type: ignore[misc]
            assert store.height == 1
        status = channel.status()
        assert status["lastFailure"] == "DecidedBlockMismatch"
        assert "failed 3 times without deciding a block" in channel.problems()[0]
        # the restarted core still decides: a genuine block is stored and the node is healthy
        channel.receive(encode(decision(channel, swap_body=False)), name)
        await until(lambda: store.height == 2, "the genuine block stored")
        await until(lambda: channel.problems() == [], "healthy again")
        assert channel.health.failures == 3
        assert not task.done()
    finally:
        task.cancel()
        channel.close()
        store.close()
