"""A node killed between writing its hard state and sending: after a restart from
`consensus.wal` it sends the very message it had signed (same signature bytes: read from disk,
not signed again) and never a different one for that slot (consensus-design §2.8).

Real block store and hard-state log in a temporary folder; one of four consenters, the others
simulated by signed messages fed to `receive`; no sockets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import NOW
from tests.unit.node.test_bft_channel_supervision import ORDERERS, SIGNER, genesis, until

from medalliance.consensus.messages import Kind, Message, Vote
from medalliance.consensus.timeouts import Timeouts
from medalliance.consensus.validators import ValidatorSet
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.network.block_feed import BlockFeed
from medalliance.node.bft_channel import HARD_STATE, BftChannel
from medalliance.node.consensus_wire import VERSION, Tag, decode, encode
from medalliance.node.hard_state_log import HardStateLog

SIGNERS = (SIGNER, *(ORDERERS.signer(f"orderer{i}", ou="orderer") for i in (1, 2, 3)))


class Killed(Exception):
    """The process died here: nothing after it ran."""


def test_a_node_killed_before_sending_its_vote_sends_the_same_vote_after_restart(
    tmp_path: Path,
) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    block = genesis(SIGNERS)
    cfg = ChannelConfig.from_block(block)
    store = BlockStore.open(tmp_path / "blocks")
    store.append(block)
    # the channel names consenters after their certificates
    signers = {c.name: SIGNERS[c.id - 1] for c in cfg.consenter_set}
    proposer = ValidatorSet(tuple(signers)).proposer(1, 0)
    me = next(n for n in signers if n != proposer)
    sent: list[Message] = []
    killed: list[Vote] = []

    def send_then_die(to: str | None, data: bytes) -> None:
        message = decode(data)
        if isinstance(message, Vote) and message.voter == me and not killed:
            killed.append(message)
            raise Killed  # persisted, never sent
        sent.append(message)

    def node(send: object) -> BftChannel:
        return BftChannel(
            config=cfg, store=store, feed=BlockFeed(store.height), directory=tmp_path / "c",
            name=me, signer=signers[me], send=send, forward=lambda envelopes: None,  # type: ignore[arg-type]
            now=lambda: NOW, timeouts=Timeouts(propose_base_ticks=5),
        )  # fmt: skip

    first = node(send_then_die)
    task = first.start()
    other = next(n for n in signers if n != me)
    nil = Vote(Kind.PREVOTE, "ch", 1, 0, None, other)
    signed = Vote(Kind.PREVOTE, "ch", 1, 0, None, other, signers[other].sign(nil.signed_bytes()))
    first.receive(encode(signed), other)  # another node is in round 0: the propose timer runs
    assert not first.dropped
    await until(lambda: bool(killed), "the node prevotes NIL (and dies sending it)")
    task.cancel()
    first.close()

    log = HardStateLog(tmp_path / "c" / HARD_STATE)
    assert log.latest is not None
    assert log.latest.state[:2] == bytes((VERSION, Tag.HARD_STATE))  # binary, written first
    log.close()

    sent.clear()
    second = node(lambda to, data: sent.append(decode(data)))
    task = second.start()
    try:
        mine = lambda: [m for m in sent if isinstance(m, Vote) and m.voter == me]  # noqa: E731
        await until(lambda: bool(mine()), "the restarted node sends its vote")
        assert mine()[0] == killed[0]  # the same signature bytes: from disk, not signed again
        assert all(m == killed[0] for m in mine() if m.round == 0 and m.kind is Kind.PREVOTE)
    finally:
        task.cancel()
        second.close()
        store.close()
