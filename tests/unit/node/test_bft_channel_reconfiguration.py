"""The ordering node performs the replica's reconfiguration: synced config blocks vote it out
(it refuses Broadcast, keeps following the chain) and back in, and each new consenter set
verifies the very next block. Real block store, signatures and hard-state log; no sockets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from tests.conftest import NOW
from tests.unit.consensus.test_replica import transaction
from tests.unit.node.test_bft_channel_supervision import (
    MEMBERS,
    ORDERERS,
    SIGNER,
    envelope,
    genesis,
    until,
)

from medalliance.consensus.messages import Kind, Value, Vote
from medalliance.errors import InvalidArgument, Unavailable
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import (
    ChannelConfig,
    ChannelDefinition,
    OrgDefinition,
    genesis_block,
)
from medalliance.ledger.commit_certificate import Consenter, write_certificate
from medalliance.network.block_feed import BlockFeed
from medalliance.node import bft_channel
from medalliance.node.bft_channel import BftChannel
from medalliance.node.block_rules import BlockRules

OTHER = ORDERERS.signer("orderer1", ou="orderer")
CONSENTERS = {
    "orderer0": Consenter(1, "orderer0", "127.0.0.1", 7050, "OrdMSP", SIGNER.serialized_identity),
    "orderer1": Consenter(2, "orderer1", "127.0.0.1", 7150, "OrdMSP", OTHER.serialized_identity),
}
KEYS = {"orderer0": SIGNER, "orderer1": OTHER}
CN = {name: f"{name}@OrdMSP" for name in KEYS}  # a consenter's name: its certificate's CN


def config_envelope(*names: str, batch_max: int = 10) -> bytes:
    """A CONFIG transaction naming `names` as the consenter set."""
    definition = ChannelDefinition(
        channel_id="ch",
        application_orgs=(OrgDefinition("Org1MSP", MEMBERS.msp, "tertiary", None, None, ()),),
        orderer_orgs=(OrgDefinition("OrdMSP", ORDERERS.msp, "orderer", None, None, ()),),
        consenters=tuple(f"127.0.0.1:{CONSENTERS[n].port}" for n in names),
        consenter_set=tuple(CONSENTERS[n] for n in names),
        batch_max_count=batch_max,
    )
    at_ms = int(NOW.timestamp() * 1000)  # consenter certificates are judged at the block's time
    return bytes(genesis_block(definition, timestamp_ms=at_ms).data.data[0])


def certified(store: BlockStore, data: bytes, *voters: str) -> common_pb2.Block:
    """The store's next block holding `data`, with a commit certificate of `voters`."""
    number = store.height
    block = new_block(number, store.last_header_hash, [data])
    value_id = header_hash(block.header)
    signatures = []
    for voter in voters:
        key = KEYS[voter]
        vote = Vote(Kind.PRECOMMIT, "ch", number, 0, value_id, CN[voter])
        signatures.append((CONSENTERS[voter].identity, key.sign(vote.signed_bytes())))
    write_certificate(block, round=0, signatures=signatures, last_config=0)
    return block


def test_block_rules_read_a_config_block_as_its_consenters_and_cut_rules(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path / "blocks")
    try:
        store.append(genesis())
        rules = BlockRules(
            config=lambda: ChannelConfig.from_block(genesis()),
            store=store,
            signer=SIGNER,
            now=lambda: NOW,
        )
        block = new_block(
            1, store.last_header_hash, [config_envelope("orderer1", "orderer0", batch_max=3)]
        )
        change = rules.reconfiguration(
            1, Value(header_hash(block.header), block.SerializeToString())
        )
        assert change is not None
        assert change.validators.ids == (CN["orderer1"], CN["orderer0"])  # the config's order
        assert change.rules.max_count == 3
        assert isinstance(change.config, ChannelConfig)
        plain = new_block(1, store.last_header_hash, [envelope("tx-1")])
        assert (
            rules.reconfiguration(1, Value(header_hash(plain.header), plain.SerializeToString()))
            is None
        )
    finally:
        store.close()


def orderer0(tmp_path: Path) -> tuple[BftChannel, BlockStore]:
    """orderer0's channel over a ledger holding genesis (orderer0 the only consenter)."""
    block = genesis()
    store = BlockStore.open(tmp_path / "blocks")
    store.append(block)
    channel = BftChannel(
        config=ChannelConfig.from_block(block),
        store=store,
        feed=BlockFeed(store.height),
        directory=tmp_path,
        name=CN["orderer0"],
        signer=SIGNER,
        send=lambda to, data: None,
        forward=lambda envelopes: None,
        now=lambda: NOW,
    )
    return channel, store


def test_a_node_voted_out_follows_and_refuses_broadcast_then_is_voted_back_in(
    tmp_path: Path,
) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    channel, store = orderer0(tmp_path)
    task = channel.start()
    try:
        await until(lambda: channel.status()["height"] == 1, "the core started")
        # block 1 hands the channel to orderer1: orderer0 retires at once
        channel.synced(certified(store, config_envelope("orderer1"), "orderer0"))
        assert channel.retired
        assert channel.status()["retired"] is True
        assert [c.name for c in channel.config.consenter_set] == [CN["orderer1"]]
        with pytest.raises(Unavailable, match="no longer orders channel ch"):
            channel.submit(envelope("tx-late"))
        # hostile: the retired consenter certifies block 2 alone; the new set refuses it
        with pytest.raises(InvalidArgument, match="block 2 from another ordering node"):
            channel.synced(certified(store, transaction("tx-forged"), "orderer0"))
        assert store.height == 2
        # it follows the chain the new set certifies ...
        channel.synced(certified(store, transaction("tx-2"), "orderer1"))
        assert store.height == 3
        assert channel.retired
        # ... and block 3 votes it in again: it takes part from height 4
        channel.synced(certified(store, config_envelope("orderer0", "orderer1"), "orderer1"))
        assert not channel.retired
        assert channel.validators.ids == (CN["orderer0"], CN["orderer1"])
        await until(lambda: channel.status()["height"] == 4, "the new core at height 4")
        assert not task.done()
        assert channel.problems() == []
    finally:
        task.cancel()
        channel.close()
        store.close()


def test_a_core_failure_on_a_synced_block_restarts_the_core_and_the_pull_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bft_channel, "RESTART_DELAY_MIN_S", 0.5)  # long enough to see it down
    asyncio.run(_failing(tmp_path))


async def _failing(tmp_path: Path) -> None:
    channel, store = orderer0(tmp_path)
    task = channel.start()
    replica_step = channel.replica.step

    def fail_once(event: object) -> object:
        channel.replica.step = replica_step  # type: ignore[method-assign]
        raise RuntimeError("the core broke on a synced block")

    try:
        await until(lambda: channel.status()["height"] == 1, "the core started")
        channel.replica.step = fail_once  # type: ignore[assignment,method-assign]
        channel.synced(certified(store, transaction("tx-1"), "orderer0"))  # stored, core fails
        assert store.height == 2
        await until(lambda: channel.health.failures == 1, "the failure reached the supervisor")
        assert channel.status()["lastFailure"] == "RuntimeError"
        with pytest.raises(Unavailable, match="is restarting"):  # the pull retries later
            channel.synced(certified(store, transaction("tx-2"), "orderer0"))
        assert store.height == 2
        await until(lambda: channel.status()["height"] == 2, "restarted from the ledger")
        channel.synced(certified(store, transaction("tx-2"), "orderer0"))
        assert store.height == 3
        assert not task.done()
    finally:
        task.cancel()
        channel.close()
        store.close()
