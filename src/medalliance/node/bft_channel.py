"""One channel's BFT ordering on one ordering node: asyncio glue around the pure replica.

The replica (`consensus/replica.py`, with `block_rules.py` saying what a block is) decides what
to order and when: admission, pending transactions, cutting, valid(v), consensus. This host
feeds it events one at a time from a bounded inbox (`replica_inbox.py`) and performs the effects
it returns through `consensus/effects.execute`, the same executor the simulator uses: persist
the hard state (an fsync'd append to `consensus.wal`), append a decided block with its commit
certificate to the block store (fsync'd) and publish it to Deliver, send, forward admitted
transactions, arm timers; evidence of equivocation (`evidence_record.py`) and sync requests
are counted and shown in `/status`. Nothing leaves the node before its hard state is on disk.

Around the replica:
- **messages**: a peer's bytes are decoded strictly; every signature (proposal, votes, POL,
  certificate, STATUS) is verified against a consenter of the set in force and a carried
  block's body against its header (`consensus_inbox.py`) before the core sees them. A refused
  message is dropped and counted by reason (`/status`), never applied.
- **decisions**: a decided block must chain onto the ledger and match its header before it is
  stored.
- **supervision**: the core's task is restarted from the ledger and the persisted hard state
  after a failure (logged at ERROR, counted, bounded back-off); a safety halt stops it for good.
  Either shows in `/status` and makes `/healthz` unhealthy (`core_health.py`).
- **catch-up**: a lagging node (the core's `NeedSync`, or no block for a while) pulls certified
  blocks from the other ordering nodes (`block_sync.py`; verifying chain and certificate), stores
  them and hands them to the core as `SyncedBlock` (`certified_blocks.py`) at once, so that a
  config block among them is in force before the next one is verified. A retired node follows
  the chain all the time.
- **reconfiguration** is the replica's: on a decided or synced config block it starts the next
  height under the new consenter set, or retires, and says so with `Reconfigured`; this host then
  installs the config (MSPs, consenters, batch size) and refuses Broadcast while retired. A
  retired node keeps following and serving the chain, and takes part again once voted in.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2

from medalliance.consensus.effects import Reconfigured, execute, restart_rebuilds
from medalliance.consensus.hard_state import ConsensusHalted, HardState
from medalliance.consensus.hard_state import HardState as _HardState
from medalliance.consensus.inputs import MessageReceived, Start, SyncedBlock, Timeout
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import (
    Decision,
    Message,
    Proposal,
)
from medalliance.consensus.ready import ArmTimer, Commit, Decided, Evidence, NeedSync
from medalliance.consensus.ready import Send as SendMessage
from medalliance.consensus.replica import Event, Replica, Submitted, Tick
from medalliance.consensus.timeouts import Timeouts
from medalliance.errors import InvalidArgument, Unavailable
from medalliance.ledger.block import verify_chain_link
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.commit_certificate import write_certificate
from medalliance.ledger.tx import SigningIdentity, parse_envelope
from medalliance.network.block_feed import BlockFeed
from medalliance.node import consensus_wire
from medalliance.node.block_rules import BlockRules, ConsenterSigner, cut_rules, validators_of
from medalliance.node.block_sync import BlockSync
from medalliance.node.certified_blocks import decided_of, last_decision
from medalliance.node.consensus_inbox import (
    RefusalLog,
    RejectedMessage,
    block_problem,
    check_message,
)
from medalliance.node.consenter_identities import ConsenterIdentities
from medalliance.node.core_health import CoreHealth
from medalliance.node.evidence_record import EvidenceRecord
from medalliance.node.hard_state_log import HardStateLog
from medalliance.node.replica_inbox import Inbox

log = logging.getLogger(__name__)

TICK_S = 0.01  # the core's timers count 10 ms ticks
MEMPOOL_FACTOR = 8  # pending transactions held: this many full blocks
HARD_STATE = "consensus.wal"
RESTART_DELAY_MIN_S = 0.1  # back-off of the core's restarts after a failure, doubling ...
RESTART_DELAY_MAX_S = 5.0  # ... up to this
INBOX_MAX = 4096  # consensus messages from peers waiting; more are dropped (and counted)

Send = Callable[[str | None, bytes], None]  # (peer name or None for all, message bytes)
Forward = Callable[[list[bytes]], None]  # admitted envelopes to the other ordering nodes


class DecidedBlockMismatch(InvalidArgument):
    """A block the core decided does not fit the ledger; storing it would corrupt the chain."""

    def __init__(self, height: int, problem: str) -> None:
        super().__init__(f"decided block {height} not stored: {problem}")


class BftChannel:
    """The ordering of one channel on this node; feed it with `receive` and `submit`."""

    def __init__(
        self,
        *,
        config: ChannelConfig,
        store: BlockStore,
        feed: BlockFeed,
        directory: Path,
        name: str,
        signer: SigningIdentity,
        send: Send,
        forward: Forward,
        now: Callable[[], dt.datetime],
        timeouts: Timeouts | None = None,
    ) -> None:
        self.config = config
        self.channel_id = config.channel_id
        self.store = store
        self.feed = feed
        self.name = name
        self._log = HardStateLog(directory / HARD_STATE)
        self._stored: HardState | None = None  # the newest hard state in the log
        self._signer = signer
        self._send = send
        self._forward = forward
        self._now = now
        consenters = config.consenter_set
        self.validators = validators_of(config)
        self.consenters = ConsenterIdentities(lambda: self.config, now, consenters)
        batch_ticks = cut_rules(config).timeout_ticks
        self._timeouts = timeouts or Timeouts(propose_base_ticks=batch_ticks + 50)
        self.rules = BlockRules(config=lambda: self.config, store=store, signer=signer, now=now)
        self.replica = Replica(
            self._new_machine(),
            self.rules,
            cut_rules(config),
            pending_max=MEMPOOL_FACTOR * config.batch_max_count,
        )
        self._inbox: Inbox[Event | _Timer | _Failed] = Inbox(INBOX_MAX)
        # set when transactions wait and the core wants a value (`_wake_ticker`)
        self._arrived = asyncio.Event()
        self.ticker_parked = False  # the ticker waits for `_arrived` (for tests and operators)
        self._arrival_queued = False  # a Tick for submissions waits in the inbox
        self._ticks_from = time.monotonic()  # tick 0 of the cutter's clock
        # signature verifications, for operators and the benchmark: consensus messages
        # (proposals, votes, POLs, certificates) and transactions (admission, validity)
        self._verified_consensus = 0
        # not (or no longer) a consenter: follow the chain and serve it, take no part (the
        # replica decides it; mirrored here for Broadcast and /status)
        self.retired = not self.validators.contains(name)
        self._task: asyncio.Task[None] | None = None  # the core's loop
        self.dropped: Counter[str] = Counter()  # refused consensus messages, by reason
        self._refusals = RefusalLog()
        self.health = CoreHealth(self.channel_id)  # failures, halt: /status and /healthz
        self._generation = 0  # timers of an earlier run of the core are dropped
        # for /metrics (node/metrics.py): read at scrape time, counted where they happen
        self.proposals = 0  # values this node proposed
        self.decided = 0  # blocks decided by the core on this node (not those caught up)
        self.round_changes = 0  # rounds that ended without a decision, over all heights
        self.on_cut: Callable[[float], None] | None = None  # a batch's fill time, in seconds
        self.evidence = EvidenceRecord(self.channel_id)  # equivocations seen
        self.sync_requests = 0  # times the core asked for blocks it lacks
        self.sync: BlockSync | None = None  # pulls from the other ordering nodes, if any

    @property
    def machine(self) -> ConsensusMachine:
        return self.replica.machine

    @property
    def verified(self) -> dict[str, int]:
        """Signature verifications: consensus messages and transactions (admission, validity)."""
        return {"consensus": self._verified_consensus, "transactions": self.rules.verified}

    def _new_machine(self) -> ConsensusMachine:
        return ConsensusMachine(
            self.channel_id, ConsenterSigner(self.name, self._signer), self._timeouts
        )

    # --- inputs from the outside ----------------------------------------------------------------

    def submit(self, envelope: bytes, *, forward: bool = True) -> str:
        """Admit a client's transaction into the mempool (and pass it to the other nodes)."""
        if self.retired:
            raise Unavailable(
                f"{self.name} no longer orders channel {self.channel_id}; ask another node"
            )
        tx_id = self.replica.submit(Submitted(envelope, self._now(), forward=forward))
        self._wake_ticker()
        if not self._arrival_queued:  # the loop's next step forwards and offers all arrivals:
            self._arrival_queued = True  # a batch of N submissions costs one step, not N
            self._inbox.push(Tick(self._ticks()))
        return tx_id

    def receive(self, data: bytes, caller: str | None = None) -> None:
        """A consensus message from consenter `caller` (authenticated by mutual TLS; None when
        unknown): decoded, verified, queued; or dropped, counted and logged."""
        try:
            message = consensus_wire.decode(data)
        except InvalidArgument as exc:
            self._drop(RejectedMessage("malformed", str(exc)), caller, None)
            return
        try:
            self._verified_consensus += check_message(
                message,
                channel_id=self.channel_id,
                validators=self.validators,
                caller=caller,
                identity_of=self.consenters.identity,
            )
        except RejectedMessage as exc:
            self._drop(exc, caller, message)
            return
        if not self._inbox.offer(MessageReceived(message)):
            self._drop(RejectedMessage("inbox-full", "the consensus inbox is full"), caller, None)

    def _drop(self, exc: RejectedMessage, caller: str | None, message: Message | None) -> None:
        self.dropped[exc.reason] += 1
        count = self._refusals.note(exc.reason, caller or "")
        if count is None:
            return
        extra = {"channel": self.channel_id, "reason": exc.reason, "caller": caller, "count": count}
        if exc.reason == "bad-block" and isinstance(message, Decision | Proposal):
            # Its signatures verified: consenters certified (or proposed) a header, and the
            # sender put another body beside it. Keep the evidence for the alliance.
            log.error(
                "consensus evidence: a block body does not match its signed header",
                extra={**extra, "height": message.height, "kind": type(message).__name__},
            )
        else:
            log.warning("consensus message dropped", extra={**extra, "detail": str(exc)})

    def synced(self, block: common_pb2.Block) -> bool:
        """A block pulled from another ordering node: stored if it is the next and certified,
        and handed to the replica at once (a config block must be in force before the next
        block's certificate is checked). Refused while the core restarts: it starts again
        from the ledger, and the pull retries. True when stored."""
        number = int(block.header.number)
        if number != self.store.height:
            return False
        if not self.health.running:
            raise Unavailable(f"the consensus core of {self.channel_id} is restarting")
        problem = verify_chain_link(self.store.get_block(number - 1).header, block)
        problem = problem or self.config.certificate_problem(block)
        if problem is not None:
            raise InvalidArgument(f"block {number} from another ordering node: {problem}")
        self._append(block)
        value, certificate = decided_of(block, self.channel_id, self.consenters.name_of)
        try:
            self._step(SyncedBlock(number, value, certificate))
        except Exception as exc:  # the core's failure: its loop raises it, its supervisor acts
            self._inbox.push(_Failed(exc))
        return True

    def status(self) -> dict[str, object]:
        return {
            "height": self.replica.height,
            "round": self.machine.round,
            "mempool": len(self.replica.pending),
            "evidence": self.evidence.status(),
            "syncRequests": self.sync_requests,
            "catchUp": None if self.sync is None else self.sync.status(),
            "halted": self.health.halted,
            "retired": self.retired,
            "signaturesVerified": dict(self.verified),
            # consensus.wal since the node started: fsync'd appends and bytes written
            "hardState": {"appends": self._log.appends, "bytes": self._log.bytes_written},
            "messagesDropped": dict(self.dropped),
            "failures": self.health.failures,
            "lastFailure": self.health.last_failure,
            "problems": self.problems(),
        }

    def problems(self) -> list[str]:
        """Why this channel's ordering is not healthy; empty when it is."""
        return self.health.problems(retired=self.retired)

    # --- the loop -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the supervised core as a task of the running loop."""
        self._task = asyncio.get_running_loop().create_task(self.supervise())
        return self._task

    async def supervise(self) -> None:
        """Run the core; after a failure log it at ERROR, count it, and start it again from the
        ledger and the persisted hard state with a bounded back-off — never a silent stop. A
        safety halt (`ConsensusHalted`) is not retried: the node reports itself unhealthy."""
        delay = RESTART_DELAY_MIN_S
        while self.health.halted is None:
            try:
                await self.run()
                return
            except Exception as exc:  # anything: a dead core must never look alive
                self.health.failed(exc)
                log.error(
                    "consensus task failed; restarting it",
                    exc_info=True,
                    extra={"channel": self.channel_id, "failures": self.health.failures},
                )
            await asyncio.sleep(delay)
            delay = min(2 * delay, RESTART_DELAY_MAX_S)

    async def run(self) -> None:
        """Start the core from the ledger and hard state, then process inputs until halted (a
        retired replica only follows the chain). Raises what the core or the host's I/O raised
        (`supervise` restarts it)."""
        self._generation += 1
        self.replica.restart(self.machine.fresh())  # the timeouts in force
        start = Start(
            height=self.store.height,
            validators=self.validators,
            hard_state=self._load_hard_state(),
            last_decision=last_decision(self.store, self.channel_id, self.consenters.name_of),
        )
        ticker = asyncio.create_task(self._tick())
        self.health.running = True
        try:
            self._step(start)
            while True:
                event = await self._inbox.get()
                if isinstance(event, _Failed):
                    raise event.error
                if isinstance(event, _Timer):
                    if event.generation != self._generation:
                        continue  # armed by an earlier run of the core
                    event = event.timeout
                self._step(event)
        except ConsensusHalted as exc:
            self.health.halted = str(exc)
            log.critical("consensus halted", extra={"channel": self.channel_id, "reason": str(exc)})
        finally:
            self.health.running = False
            ticker.cancel()

    async def _tick(self) -> None:
        """Time for the cutter, while transactions wait."""
        while True:
            if not (self.replica.pending and self.replica.wants_value):
                # Nothing to cut until a transaction arrives and the core wants a value (this
                # node proposes): waking 100 times a second regardless cost every idle ordering
                # node ~4% of a core, and under load the nodes that do not propose.
                self._arrived.clear()
                self.ticker_parked = True
                try:
                    await self._arrived.wait()
                finally:
                    self.ticker_parked = False
                continue
            await asyncio.sleep(TICK_S)
            if self.replica.wants_value:
                self._inbox.push(Tick(self._ticks()))

    def _wake_ticker(self) -> None:
        if self.ticker_parked and self.replica.wants_value and self.replica.pending:
            self._arrived.set()

    def _step(self, event: Event) -> None:
        """One event through the replica; its effects performed in order."""
        self._arrival_queued = False  # any step acts on what was submitted before it
        proposals = self.replica.proposals
        effects = self.replica.step(event)
        self._wake_ticker()
        if self.replica.proposals > proposals:
            self.proposals += 1
            if self.on_cut is not None:
                self.on_cut(self.replica.last_cut_waited_ticks * TICK_S)
        execute(effects, self)

    def _ticks(self) -> int:
        return int((time.monotonic() - self._ticks_from) / TICK_S)

    # --- effects (consensus/effects.EffectHost) -------------------------------------------------

    def proceed(self) -> bool:
        return True

    def persist_hard_state(self, state: _HardState) -> None:
        if restart_rebuilds(state, self._stored, self.store.height):
            return  # a new height with nothing signed yet: the state on disk restarts alike
        self._log.append(
            consensus_wire.encode_hard_state(state), consensus_wire.value_bodies(state)
        )
        self._stored = state

    def append_block(self, commit: Commit) -> None:
        self._commit(commit)

    def send_message(self, send: SendMessage) -> None:
        self._send(send.to, consensus_wire.encode(send.message))

    def arm_timer(self, timer: ArmTimer) -> None:
        event = _Timer(self._generation, Timeout(timer.kind, timer.height, timer.round))
        asyncio.get_running_loop().call_later(timer.ticks * TICK_S, self._inbox.push, event)

    def forward_envelopes(self, envelopes: tuple[bytes, ...]) -> None:
        self._forward(list(envelopes))

    def request_sync(self, request: NeedSync) -> None:
        self.sync_requests += 1  # counted for operators
        if self.sync is not None:  # pull from the others until the store reaches to_height
            self.sync.request(request.to_height, request.peer)

    def record_evidence(self, evidence: Evidence) -> None:
        self.evidence.record(evidence)

    def note_decided(self, decided: Decided) -> None:
        pass  # stored and published to Deliver by `append` already

    def reconfigure(self, reconfigured: Reconfigured) -> None:
        """The replica put a config block in force (it already runs the new set, or retired):
        verify, admit and sign under it from now on."""
        config = reconfigured.config
        assert isinstance(config, ChannelConfig), "BlockRules reads config blocks as such"
        self.config = config
        self.validators = reconfigured.validators
        self.consenters.update(config.consenter_set)
        self._generation += 1  # the ended machine's timers (its resend chain too) end with it
        if reconfigured.retired != self.retired:
            log.warning(
                "no longer a consenter" if reconfigured.retired else "voted in as a consenter",
                extra={"channel": self.channel_id, "height": reconfigured.height},
            )
        self.retired = reconfigured.retired
        if self.sync is not None:  # a retired node follows the chain; a consenter catches up
            self.sync.set_retired(self.retired)
        log.info(
            "channel configuration updated",
            extra={
                "channel": self.channel_id,
                "sequence": config.sequence,
                "consenters": list(self.validators.ids),
            },
        )

    # --- decisions ------------------------------------------------------------------------------

    def _commit(self, commit: Commit) -> None:
        if commit.height < self.store.height:
            return  # stored already by catch-up
        # Checked on arrival already; checked again here because nothing may be stored that
        # does not chain (a failure restarts the core, which then fetches the right block).
        problem = block_problem(commit.value, commit.height)
        if problem is None and commit.height != self.store.height:
            problem = f"the ledger's next block is {self.store.height}"
        block = common_pb2.Block.FromString(commit.value.body)
        if problem is None and bytes(block.header.previous_hash) != self.store.last_header_hash:
            problem = "its previous hash is not the ledger's last header hash"
        if problem is not None:
            raise DecidedBlockMismatch(commit.height, problem)
        precommits = commit.certificate.precommits
        write_certificate(
            block,
            round=commit.certificate.round,
            signatures=[(self.consenters.bytes_of[v.voter], v.signature) for v in precommits],
            last_config=0,
        )
        self._append(block, self.rules.tx_ids(commit.value))  # remembered since valid(v)
        self.health.failures_in_a_row = 0
        self.decided += 1
        self.round_changes += commit.certificate.round
        log.info(
            "block decided",
            extra={
                "channel": self.channel_id,
                "block": commit.height,
                "round": commit.certificate.round,
                "txs": len(block.data.data),
            },
        )

    def _append(self, block: common_pb2.Block, tx_ids: Sequence[str] | None = None) -> None:
        if tx_ids is None:
            tx_ids = [parse_envelope(bytes(d)).header.tx_id for d in block.data.data]
        self.store.append(block, tx_ids)
        self.feed.published(self.store.height, [])

    # --- hard state ---------------------------------------------------------------------------

    def _load_hard_state(self) -> HardState | None:
        latest = self._log.latest
        self._stored = None
        if latest is not None:
            self._stored = consensus_wire.decode_hard_state(latest.state, latest.bodies)
        return self._stored

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.sync is not None:
            self.sync.close()
        self._log.close()


@dataclass(frozen=True, slots=True)
class _Failed:
    """The core failed outside its loop (on a synced block): the loop raises it."""

    error: Exception


@dataclass(frozen=True, slots=True)
class _Timer:
    """A timeout armed by run `generation` of the core: a restarted core ignores older ones."""

    generation: int
    timeout: Timeout
