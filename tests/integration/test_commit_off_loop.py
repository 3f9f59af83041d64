"""A peer's commit waits for the block file's fsync in a worker thread (`commit_async`): the event
loop serves other requests meanwhile, and nothing of the block shows before it is durable."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest
from fabric_protos.common import common_pb2
from tests.integration.test_embedded_network import certify, consenter, endorsed_envelope

from medalliance.errors import PreconditionFailed
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.tx import Code
from medalliance.node.channel import PeerChannel
from medalliance.node.embedded import EmbeddedNetwork

DEADLINE_S = 30


class HeldFsync:
    """`os.fsync` from worker threads waits until released; the main thread's is untouched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        real = os.fsync

        def fsync(fd: int) -> None:
            if threading.current_thread() is not threading.main_thread():
                self.entered.set()
                assert self.release.wait(DEADLINE_S)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, DEADLINE_S)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldFsync]:
    fsync = HeldFsync(monkeypatch)
    yield fsync
    fsync.release.set()


def next_block(network: EmbeddedNetwork, channel: PeerChannel, visit: str) -> tuple[
    common_pb2.Block, str
]:  # fmt: skip
    envelope, tx_id = endorsed_envelope(network, "HospCMSP", visit)
    previous = header_hash(channel.store.get_block(channel.height - 1).header)
    block = new_block(channel.height, previous, [envelope])
    certify(block, consenter(network))
    return block, tx_id


def test_nothing_of_a_block_shows_before_its_fsync_and_the_loop_keeps_serving(
    network: EmbeddedNetwork, held: HeldFsync
) -> None:
    channel = network.peers_of("alliance")[0].channel("alliance")
    block, tx_id = next_block(network, channel, "V-loop")
    height, state = channel.height, channel.state.state_hash()
    heard: list[int] = []
    channel.add_listener(lambda b, r: heard.append(int(b.header.number)))

    async def commit() -> tuple[int, ...]:
        task = asyncio.create_task(channel.commit_async(block))
        await held.wait_entered()  # the loop runs this while the worker thread fsyncs
        assert (channel.height, channel.store.tx_location(tx_id), heard) == (height, None, [])
        assert channel.state.state_hash() == state
        with pytest.raises(PreconditionFailed, match="being stored"):  # one block at a time
            channel.store.write(block)
        held.release.set()
        return (await task).codes

    assert asyncio.run(commit()) == (Code.Value("VALID"),)
    location = channel.store.tx_location(tx_id)
    assert location is not None
    assert (channel.height, location.block_num, heard) == (height + 1, height, [height])
    assert channel.state.state_hash() != state


def test_a_commit_whose_caller_is_cancelled_completes(
    network: EmbeddedNetwork, held: HeldFsync
) -> None:
    """The pull that started a commit is cancelled (the peer stops) while the fsync runs: the
    block is indexed and applied all the same, never left written but unindexed."""
    channel = network.peers_of("alliance")[0].channel("alliance")
    block, tx_id = next_block(network, channel, "V-cancel")
    height = channel.height

    async def cancelled() -> None:
        task = asyncio.create_task(channel.commit_async(block))
        await held.wait_entered()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        held.release.set()
        await channel.settle()

    asyncio.run(cancelled())
    assert channel.height == height + 1
    assert channel.store.tx_location(tx_id) is not None
