"""The replica reconfigures itself, pure: a decided or synced config block ends the machine at
its height; the next height runs a fresh machine under the block's validators and cut rules, or
the replica retires. `Reconfigured` tells the host, after the block and before anything of the
next height. A toy application whose values name their config; real machine, HMAC signatures.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from tests.simulation.fakes import FakeSigner

from medalliance.consensus.effects import (
    AppendBlock,
    Effect,
    PersistHardState,
    Reconfigured,
)
from medalliance.consensus.inputs import MessageReceived, Start, SyncedBlock, Timeout
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import Certificate, Kind, Proposal, Value, Vote
from medalliance.consensus.pending import Batch, CutRules
from medalliance.consensus.ready import Send
from medalliance.consensus.replica import (
    Admitted,
    Reconfiguration,
    Replica,
    Submitted,
    Tick,
)
from medalliance.consensus.timeouts import TimerKind
from medalliance.consensus.validators import ValidatorSet

CHANNEL = "ch"
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
RULES = CutRules(max_count=1, preferred_bytes=1 << 20, timeout_ticks=1)


class ConfigApp:
    """Transactions are names; `config:a,b/3/40` orders a config naming validators a, b, a
    batch of 3 and a batch timeout of 40 ticks. valid(v) is the value's height prefix."""

    def admit(self, envelope: bytes, at: dt.datetime) -> Admitted:
        return Admitted(envelope.decode(), alone=envelope.startswith(b"config:"))

    def propose(self, height: int, round: int, batch: Batch) -> Value | None:
        return value(height, *batch.envelopes)

    def valid(self, height: int, value: Value) -> bool:
        return value.body.startswith(b"%d|" % height)

    def unorderable(self, batch: Batch) -> tuple[str, ...]:
        return ()  # what was admitted stays orderable

    def tx_ids(self, value: Value) -> tuple[str, ...]:
        return tuple(tx.decode() for tx in value.body.split(b"|", 1)[1].split(b";") if tx)

    def reconfiguration(self, height: int, value: Value) -> Reconfiguration | None:
        txs = self.tx_ids(value)
        if len(txs) != 1 or not txs[0].startswith("config:"):
            return None
        names, *batch = txs[0].removeprefix("config:").split("/")
        count = int(batch[0]) if batch else RULES.max_count
        timeout = int(batch[1]) if len(batch) > 1 else RULES.timeout_ticks
        rules = CutRules(count, RULES.preferred_bytes, timeout)
        return Reconfiguration(txs[0], ValidatorSet(tuple(names.split(","))), rules)


def value(height: int, *txs: bytes) -> Value:
    body = b"%d|" % height + b";".join(txs)
    return Value(hashlib.sha256(body).digest(), body)


def certified(height: int, decided: Value, voter: str = "a") -> Certificate:
    vote = Vote(Kind.PRECOMMIT, CHANNEL, height, 0, decided.value_id, voter)
    signature = FakeSigner.for_node(voter).sign(vote.signed_bytes())
    return Certificate(
        (Vote(Kind.PRECOMMIT, CHANNEL, height, 0, decided.value_id, voter, signature),)
    )


def replica(me: str, validators: tuple[str, ...], height: int = 1) -> tuple[Replica, list[Effect]]:
    machine = ConsensusMachine(CHANNEL, FakeSigner.for_node(me))
    node = Replica(machine, ConfigApp(), RULES, pending_max=8)
    return node, node.step(Start(height, ValidatorSet(validators)))


def order(node: Replica, tx: bytes, now: int) -> list[Effect]:
    node.submit(Submitted(tx, AT, forward=False))
    return node.step(Tick(now))


def heights_signed(effects: list[Effect]) -> list[int]:
    return [
        e.message.height for e in effects if isinstance(e, Send) and hasattr(e.message, "height")
    ]


def test_a_decided_config_block_starts_the_next_height_under_its_validators_and_rules() -> None:
    node, _ = replica("a", ("a",))
    old_machine = node.machine
    node.submit(Submitted(b"config:a,b/3/40", AT, forward=False))
    node.submit(Submitted(b"later", AT, forward=False))  # pending: the old machine would go on
    effects = node.step(Tick(1))
    kinds = [type(e) for e in effects]
    assert kinds.count(AppendBlock) == 1
    reconfigured = effects[kinds.index(Reconfigured)]
    assert reconfigured == Reconfigured(2, "config:a,b/3/40", ValidatorSet(("a", "b")), False)
    assert kinds.index(AppendBlock) < kinds.index(Reconfigured)
    before = effects[: kinds.index(Reconfigured)]
    assert set(heights_signed(before)) <= {1}  # nothing of height 2 from the ended machine
    assert node.machine is not old_machine
    assert node.machine.height == 2
    assert node.validators == ValidatorSet(("a", "b"))
    assert (node.rules.max_count, node.rules.timeout_ticks) == (3, 40)
    # followers wait for the longer batch: the propose timeout grew by as much (39 ticks)
    assert node.machine.timeouts.propose_base_ticks == old_machine.timeouts.propose_base_ticks + 39
    assert not node.retired
    assert len(node.pending) == 1  # what was pending stays for the new configuration
    # the fresh machine runs the new set and rules: a proposes height 2 once the batch of the
    # new timeout is due, and waits for b's votes
    assert not any(isinstance(e, Send) for e in node.step(Tick(39)))
    effects = node.step(Tick(40))
    proposals = [e for e in effects if isinstance(e, Send) and isinstance(e.message, Proposal)]
    assert [p.message.height for p in proposals] == [2]
    assert not any(isinstance(e, AppendBlock) for e in effects)  # alone it is no quorum of 2


def test_the_fresh_machine_starts_from_the_hard_state_last_handed_to_the_host() -> None:
    node, _ = replica("a", ("a",))
    effects = order(node, b"config:a,b", 1)
    persisted = [e.state for e in effects if isinstance(e, PersistHardState)]
    reconfigured_at = [type(e) for e in effects].index(Reconfigured)
    durable = [e.state for e in effects[:reconfigured_at] if isinstance(e, PersistHardState)][-1]
    assert durable.height == 1
    assert durable.last_signed is not None
    assert persisted[-1].height == 2  # the new machine's own, written after the block


def test_a_node_voted_out_retires_and_ignores_consensus_but_follows_the_chain() -> None:
    node, _ = replica("a", ("a",))
    effects = order(node, b"config:b", 1)
    assert Reconfigured(2, "config:b", ValidatorSet(("b",)), True) in effects
    assert node.retired
    assert not node.wants_value
    assert node.height == 2  # the next block it follows
    vote = Vote(Kind.PREVOTE, CHANNEL, 2, 0, None, "b")
    assert node.step(MessageReceived(vote)) == []
    assert node.step(Timeout(TimerKind.PROPOSE, 2, 0)) == []
    assert node.step(Tick(50)) == []
    block = value(2, b"x")
    assert node.step(SyncedBlock(2, block, certified(2, block, "b"))) == []


def test_a_follower_is_voted_in_by_a_synced_config_block_and_starts_the_next_height() -> None:
    node, effects = replica("c", ("a", "b"), height=1)
    assert node.retired
    assert effects == []
    first = value(1, b"x")
    assert node.step(SyncedBlock(1, first, certified(1, first))) == []
    config = value(2, b"config:a,c")
    effects = node.step(SyncedBlock(2, config, certified(2, config)))
    assert effects[0] == Reconfigured(3, "config:a,c", ValidatorSet(("a", "c")), False)
    assert not node.retired
    assert node.machine.height == 3
    assert any(isinstance(e, PersistHardState) for e in effects[1:])  # the new machine began


@pytest.mark.parametrize("height", [1, 3, 7], ids=["replayed", "ahead", "far ahead"])
def test_a_config_block_out_of_turn_does_not_vote_a_follower_in(height: int) -> None:
    """Hostile replay: an old (or not yet reached) config block naming the follower is not the
    chain's next block, so it changes nothing."""
    node, _ = replica("c", ("a", "b"), height=2)
    config = value(height, b"config:a,c")
    assert node.step(SyncedBlock(height, config, certified(height, config))) == []
    assert node.retired
    assert node.validators == ValidatorSet(("a", "b"))


def test_an_ordinary_block_reconfigures_nothing() -> None:
    node, _ = replica("a", ("a",))
    old_machine = node.machine
    effects = order(node, b"tx", 1)
    assert any(isinstance(e, AppendBlock) for e in effects)
    assert not any(isinstance(e, Reconfigured) for e in effects)
    assert node.machine is old_machine
    assert node.machine.height == 2
