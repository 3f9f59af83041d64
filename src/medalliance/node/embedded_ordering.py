"""The embedded network's ordering: n replicas, one per consenter, over an in-memory link.

The same `Replica` the ordering nodes run (consensus/replica.py, with `block_rules.py`), its
effects performed through `effects.execute`, on virtual time: `flush` lets the batch timeout
pass and then delivers messages and fires timers until every admitted transaction is in a
block. Integration tests therefore order through the BFT protocol (proposal, prevotes,
precommits, certificate) rather than by signing a quorum in one place. Messages stay in the
process; their signatures are made by each consenter's key and land in the block's commit
certificate, which every peer verifies on commit. A config block the replicas decide is put in
force by them (`Reconfigured`): each member then admits and validates under the new config, and
a member voted out retires.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import deque
from collections.abc import Callable, Sequence

from fabric_protos.common import common_pb2

from medalliance.consensus.effects import Reconfigured, execute
from medalliance.consensus.hard_state import HardState
from medalliance.consensus.inputs import MessageReceived, Start, Timeout
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.ready import ArmTimer, Commit, Decided, Evidence, NeedSync, Send
from medalliance.consensus.replica import Event, Replica, Submitted, Tick
from medalliance.consensus.timeouts import Timeouts
from medalliance.consensus.validators import ValidatorSet
from medalliance.errors import InvalidArgument, Unavailable
from medalliance.ledger.block import header_hash
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.commit_certificate import write_certificate
from medalliance.ledger.tx import SigningIdentity, parse_envelope
from medalliance.node.block_rules import BlockRules, ConsenterSigner, cut_rules

STEPS_MAX = 100_000  # a flush that needs more has stopped making progress: a bug, raised


class MemoryChain:
    """What a replica reads of its chain: height, last header hash, which tx ids it holds."""

    def __init__(self, height: int, last_header_hash: bytes) -> None:
        self.height = height
        self.last_header_hash = last_header_hash
        self._tx_ids: set[str] = set()

    def tx_location(self, tx_id: str) -> int | None:
        return 0 if tx_id in self._tx_ids else None

    def committed_among(self, tx_ids: Sequence[str]) -> frozenset[str]:
        return frozenset(self._tx_ids.intersection(tx_ids))

    def append(self, block: common_pb2.Block, tx_ids: Sequence[str]) -> None:
        self.height += 1
        self.last_header_hash = header_hash(block.header)
        self._tx_ids.update(tx_ids)


class _Member:
    """One consenter's replica and the effects it asks for, performed in memory."""

    def __init__(
        self, ordering: EmbeddedOrdering, name: str, signer: SigningIdentity, chain: MemoryChain
    ) -> None:
        self.ordering, self.name, self.chain = ordering, name, chain
        self.config = config = ordering.config
        self.generation = 0  # timers of a machine a reconfiguration ended are dropped
        self.rules = BlockRules(
            config=lambda: self.config,
            store=chain,  # type: ignore[arg-type]  # reads height, last hash, tx ids only
            signer=signer,
            now=ordering.clock,
        )
        timeouts = Timeouts(propose_base_ticks=ordering.timeout_ticks + 50)
        machine = ConsensusMachine(config.channel_id, ConsenterSigner(name, signer), timeouts)
        self.replica = Replica(machine, self.rules, cut_rules(config), 8 * config.batch_max_count)

    def step(self, event: Event) -> None:
        execute(self.replica.step(event), self)
        if self.replica.wants_value:
            self.ordering.later(self.name, 1, Tick(self.ordering.now + 1), self.generation)

    # --- effects ---

    def proceed(self) -> bool:
        return True

    def persist_hard_state(self, state: HardState) -> None:
        pass  # no restarts in one process: nothing to recover

    def append_block(self, commit: Commit) -> None:
        block = common_pb2.Block.FromString(commit.value.body)
        identity = self.ordering.identity_of
        write_certificate(
            block,
            round=commit.certificate.round,
            signatures=[(identity[v.voter], v.signature) for v in commit.certificate.precommits],
            last_config=0,
        )
        tx_ids = [parse_envelope(bytes(d)).header.tx_id for d in block.data.data]
        self.chain.append(block, tx_ids)
        if commit.height == self.ordering.next_number:  # the first member to store it
            self.ordering.next_number += 1
            self.ordering.deliver(block)

    def send_message(self, send: Send) -> None:
        validators = self.replica.validators.ids if self.replica.validators else ()
        targets = [n for n in validators if n != self.name] if send.to is None else [send.to]
        for to in targets:
            if to in self.ordering.members:
                self.ordering.messages.append((to, MessageReceived(send.message)))

    def arm_timer(self, timer: ArmTimer) -> None:
        timeout = Timeout(timer.kind, timer.height, timer.round)
        self.ordering.later(self.name, timer.ticks, timeout, self.generation)

    def forward_envelopes(self, envelopes: tuple[bytes, ...]) -> None:
        for member in self.ordering.active():
            if member is not self:
                for envelope in envelopes:
                    member.replica.submit(Submitted(envelope, self.ordering.clock(), False))

    def request_sync(self, request: NeedSync) -> None:
        pass  # every member hears every message: none falls behind

    def record_evidence(self, evidence: Evidence) -> None:
        raise InvalidArgument(f"consenter {evidence.culprit} equivocated in one process")

    def note_decided(self, decided: Decided) -> None:
        pass

    def reconfigure(self, reconfigured: Reconfigured) -> None:
        assert isinstance(reconfigured.config, ChannelConfig)
        self.config = reconfigured.config
        self.generation += 1
        if reconfigured.height > self.ordering.config_height:  # the first member to say so
            self.ordering.config_height = reconfigured.height
            self.ordering.config = self.config


class EmbeddedOrdering:
    """One channel's ordering service in the process: `broadcast`, then `flush`."""

    def __init__(
        self,
        config: ChannelConfig,
        signers: Sequence[SigningIdentity],
        deliver: Callable[[common_pb2.Block], None],
        *,
        next_number: int,
        previous_hash: bytes,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.config = config
        self.deliver = deliver
        self.clock = clock
        self.timeout_ticks = max(1, config.batch_timeout_ms // 10)
        by_identity = {s.serialized_identity: s for s in signers}
        consenters = [c for c in config.consenter_set if c.identity in by_identity]
        if not consenters:
            raise InvalidArgument(f"no consenter of {config.channel_id} is in this process")
        self.names = tuple(c.name for c in consenters)
        self.identity_of = {c.name: c.identity for c in consenters}
        self.now = 0
        self.next_number = next_number  # the next block to deliver
        self.config_height = next_number  # the height `config` is in force from
        self.messages: deque[tuple[str, Event]] = deque()
        self._timers: list[tuple[int, int, str, int, Event]] = []
        self._seq = 0
        self.members = {
            c.name: _Member(
                self, c.name, by_identity[c.identity], MemoryChain(next_number, previous_hash)
            )
            for c in consenters
        }
        validators = ValidatorSet(self.names)
        for member in self.members.values():
            member.step(Start(next_number, validators))

    def active(self) -> list[_Member]:
        """The members that are consenters now (a reconfiguration may retire some)."""
        return [m for m in self.members.values() if not m.replica.retired]

    @property
    def pending_count(self) -> int:
        return max((len(m.replica.pending) for m in self.active()), default=0)

    def later(self, name: str, ticks: int, event: Event, generation: int) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (self.now + ticks, self._seq, name, generation, event))

    def broadcast(self, envelope: bytes, *, now: dt.datetime) -> str:
        """Admit one signed transaction at the first consenter (which forwards it)."""
        active = self.active()
        if not active:
            raise Unavailable(f"no consenter of {self.config.channel_id} is in this process")
        first = active[0]
        tx_id = first.replica.submit(Submitted(envelope, now))
        first.step(Tick(self.now))
        return tx_id

    def flush(self) -> None:
        """Let the batch timeout pass and run the protocol until nothing is pending."""
        self.now += self.timeout_ticks
        for member in self.members.values():
            member.step(Tick(self.now))
        for _ in range(STEPS_MAX):
            if not self.pending_count and not self.messages:
                return
            if self.messages:
                to, event = self.messages.popleft()
            else:
                at, _, to, generation, event = heapq.heappop(self._timers)
                self.now = max(self.now, at)
                if generation != self.members[to].generation:
                    continue  # armed for a machine a reconfiguration ended
            self.members[to].step(event)
        raise RuntimeError(f"ordering of {self.config.channel_id} made no progress")
