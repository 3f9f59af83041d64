"""One channel's BFT ordering on one ordering node: the consensus core and the I/O around it.

The core (`consensus/`) decides; this host feeds it inputs one at a time from a queue and
executes each `Ready` in the order the core requires (consensus-design §2.2): persist the hard
state (an fsync'd append to `consensus.wal`), append a decided block with its commit
certificate to the block store (fsync'd) and publish it to Deliver, send messages, arm timers,
serve requests. Nothing of a `Ready` leaves the node before its hard state is on disk.

Around the core:
- **mempool**: Broadcast admission (signature, Writers policy, size, duplicates against the
  mempool and the ledger), FIFO, bounded; a transaction admitted here is forwarded once to the
  other ordering nodes so any proposer can include it. Transactions leave when a decided block
  holds them.
- **values**: when the core asks this node to propose, a batch is cut from the mempool by count,
  bytes and the batch timeout, as Fabric's block cutter does; never an empty block.
- **validity**: a proposed block must extend the ledger (number, previous hash, data hash), hold
  1..MaxMessageCount distinct, not yet ordered transactions that each pass admission as of the
  block's time — a deterministic verdict on every correct node.
- **messages**: a peer's bytes are decoded strictly and every signature (proposal, votes, POL,
  certificate) verified against the consenter's identity before the core sees them.
- **catch-up**: a lagging node pulls certified blocks from the other ordering nodes (verifying
  chain and certificate), stores them and hands them to the core as `SyncedBlock`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from medalliance.consensus.hard_state import ConsensusHalted, HardState
from medalliance.consensus.inputs import (
    Input,
    MessageReceived,
    ProposalChecked,
    Start,
    SyncedBlock,
    Timeout,
    TxAvailable,
    ValueReady,
)
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import (
    Certificate,
    Decision,
    Kind,
    Message,
    Proposal,
    Status,
    Value,
    Vote,
)
from medalliance.consensus.ready import CheckValue, Commit, Evidence, NeedValue, Ready
from medalliance.consensus.timeouts import Timeouts
from medalliance.consensus.validators import ValidatorSet
from medalliance.errors import (
    DuplicateTransaction,
    InvalidArgument,
    MedallianceError,
    Overloaded,
    Unavailable,
)
from medalliance.identity.msp import Identity
from medalliance.ledger.block import data_hash, header_hash, new_block, verify_chain_link
from medalliance.ledger.block_signature import block_time
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.commit_certificate import read_certificate, write_certificate
from medalliance.ledger.config_update import (
    CONFIG_UPDATE,
    apply_update,
    check_config_transaction,
    config_transaction,
    is_config_block,
    update_of,
)
from medalliance.ledger.tx import ENDORSER_TRANSACTION, SigningIdentity, parse_envelope
from medalliance.network.block_feed import BlockFeed
from medalliance.node import consensus_wire
from medalliance.node.hard_state_log import HardStateLog
from medalliance.node.mempool import Mempool
from medalliance.node.ordering import admit

log = logging.getLogger(__name__)

TICK_S = 0.01  # the core's timers count 10 ms ticks
MEMPOOL_FACTOR = 8  # pending transactions held: this many full blocks
HARD_STATE = "consensus.wal"

Send = Callable[[str | None, bytes], None]  # (peer name or None for all, message bytes)
Forward = Callable[[list[bytes]], None]  # admitted envelopes to the other ordering nodes


class _CoreSigner:
    def __init__(self, name: str, signer: SigningIdentity) -> None:
        self.node_id = name
        self._signer = signer

    def sign(self, payload: bytes) -> bytes:
        return self._signer.sign(payload)


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
        self._signer = signer
        self._send = send
        self._forward = forward
        self._now = now
        consenters = config.consenter_set
        self.validators = ValidatorSet(tuple(c.name for c in consenters))
        self._identity_bytes = {c.name: c.identity for c in consenters}
        self._name_of = {c.identity: c.name for c in consenters}
        self._identities: dict[str, Identity] = {}
        batch_ticks = max(1, config.batch_timeout_ms // 10)
        self._timeouts = timeouts or Timeouts(propose_base_ticks=batch_ticks + 50)
        self.machine = ConsensusMachine(self.channel_id, _CoreSigner(name, signer), self._timeouts)
        self._queue: asyncio.Queue[Input] = asyncio.Queue()
        self._mempool = Mempool()
        self._want: tuple[int, int] | None = None  # a value the core asked this node for
        self.halted: str | None = None
        # signature verifications, for operators and the benchmark: consensus messages
        # (proposals, votes, POLs, certificates) and transactions (admission, validity)
        self.verified = {"consensus": 0, "transactions": 0}
        self._reconfigured = False  # a config block was stored: restart the core at h+1
        # not (or no longer) a consenter: follow the chain and serve it, take no part
        self.retired = not self.validators.contains(name)
        self._task: asyncio.Task[None] | None = None  # the core's loop, once voted in

    # --- inputs from the outside ----------------------------------------------------------------

    def submit(self, envelope: bytes, *, forward: bool = True) -> str:
        """Admit a client's transaction into the mempool (and pass it to the other nodes)."""
        if self.retired:
            raise Unavailable(
                f"{self.name} no longer orders channel {self.channel_id}; ask another node"
            )
        tx_id = admit(self.config, envelope, now=self._now())
        self.verified["transactions"] += 1
        header_type = parse_envelope(envelope).header.header_type
        if header_type == CONFIG_UPDATE:  # refused now if it could not apply
            apply_update(self.config, update_of(parse_envelope(envelope)), at=self._now())
        elif header_type != ENDORSER_TRANSACTION:
            raise InvalidArgument(
                f"Broadcast takes endorser transactions and config updates, not type {header_type}"
            )
        if tx_id in self._mempool or self.store.tx_location(tx_id) is not None:
            raise DuplicateTransaction(tx_id)
        if len(self._mempool) >= MEMPOOL_FACTOR * self.config.batch_max_count:
            raise Overloaded(f"the ordering service's queue for {self.channel_id} is full")
        was_empty = not self._mempool
        self._mempool.add(tx_id, envelope)
        if forward:
            self._forward([envelope])
        if was_empty:
            self._queue.put_nowait(TxAvailable())
        return tx_id

    def receive(self, data: bytes) -> None:
        """A consensus message from another ordering node: decoded, verified, queued."""
        try:
            message = consensus_wire.decode(data)
            self._verify(message)
        except MedallianceError as exc:
            log.warning("consensus message dropped", extra={"reason": str(exc)})
            return
        self._queue.put_nowait(MessageReceived(message))

    def synced(self, block: common_pb2.Block) -> None:
        """A block pulled from another ordering node: stored if it is the next and certified."""
        number = int(block.header.number)
        if number != self.store.height:
            return
        problem = verify_chain_link(self.store.get_block(number - 1).header, block)
        problem = problem or self.config.certificate_problem(block)
        if problem is not None:
            raise InvalidArgument(f"block {number} from another ordering node: {problem}")
        self._append(block)
        if self.retired:
            if self.validators.contains(self.name):  # voted in: take part from the next height
                self.retired = False
                self._reconfigured = False
                self._task = asyncio.get_running_loop().create_task(self.run())
            return
        value, certificate = self._decided(block)
        self._queue.put_nowait(SyncedBlock(number, value, certificate))

    def status(self) -> dict[str, object]:
        return {
            "height": self.machine.height,
            "round": self.machine.round,
            "mempool": len(self._mempool),
            "halted": self.halted,
            "retired": self.retired,
            "signaturesVerified": dict(self.verified),
        }

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the core from the ledger and hard state, then process inputs forever."""
        if self.retired:
            return
        start = Start(
            height=self.store.height,
            validators=self.validators,
            hard_state=self._load_hard_state(),
            last_decision=self._last_decision(),
        )
        ticker = asyncio.create_task(self._tick())
        try:
            self._execute(self.machine.step(start))
            while not self.retired:
                event = await self._queue.get()
                self._execute(self.machine.step(event))
                if self._reconfigured:
                    self._restart()
        except ConsensusHalted as exc:
            self.halted = str(exc)
            log.critical("consensus halted", extra={"channel": self.channel_id, "reason": str(exc)})
        finally:
            ticker.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._try_cut()

    def _execute(self, readies: list[Ready]) -> None:
        for ready in readies:
            if ready.persist is not None:
                self._log.append(consensus_wire.encode_hard_state(ready.persist))
            if ready.commit is not None:
                self._commit(ready.commit)
            for send in ready.send:
                self._send(send.to, consensus_wire.encode(send.message))
            for timer in ready.timers:
                event = Timeout(timer.kind, timer.height, timer.round)
                asyncio.get_running_loop().call_later(
                    timer.ticks * TICK_S, self._queue.put_nowait, event
                )
            for request in ready.requests:
                match request:
                    case NeedValue():
                        self._want = (request.height, request.round)
                        self._try_cut()
                    case CheckValue():
                        verdict = self._valid(request.height, request.value)
                        self._queue.put_nowait(
                            ProposalChecked(
                                request.height, request.round, request.value.value_id, verdict
                            )
                        )
                    case Evidence():
                        log.error(
                            "ordering node equivocated",
                            extra={"channel": self.channel_id, "node": request.culprit},
                        )
                    case _:
                        pass  # NeedSync: the pull from the other nodes runs all the time

    # --- values ---------------------------------------------------------------------------------

    def _try_cut(self) -> None:
        """Answer the core's NeedValue with a batch once the block cutter's rules allow."""
        if self._want is None or not self._mempool:
            return
        height, round_ = self._want
        if height != self.machine.height or height != self.store.height:
            self._want = None
            return
        config = self.config
        batch = self._mempool.batch(
            max_count=config.batch_max_count,
            preferred_bytes=config.batch_preferred_max_bytes,
            timeout_ms=config.batch_timeout_ms,
        )
        if batch is None:
            return
        self._want = None
        if batch.config_update is not None:
            self._cut_config(height, round_, batch.config_update, batch.envelopes[0])
            return
        block = new_block(height, self.store.last_header_hash, list(batch.envelopes))
        value = Value(header_hash(block.header), block.SerializeToString())
        self._queue.put_nowait(ValueReady(height, round_, value))

    def _cut_config(self, height: int, round_: int, tx_id: str, update: bytes) -> None:
        """Propose the CONFIG transaction of the oldest pending update, alone in its block."""
        now = self._now()
        try:
            config = apply_update(self.config, update_of(parse_envelope(update)), at=now)
        except MedallianceError as exc:  # stale since admission: the submitter must redo it
            self._mempool.remove([tx_id])
            log.warning("config update dropped", extra={"tx_id": tx_id, "reason": str(exc)})
            return
        tx = config_transaction(
            config, update, self._signer, timestamp_ms=int(now.timestamp() * 1000)
        )
        block = new_block(height, self.store.last_header_hash, [tx])
        value = Value(header_hash(block.header), block.SerializeToString())
        self._queue.put_nowait(ValueReady(height, round_, value))

    def _valid(self, height: int, value: Value) -> bool:
        """valid(v): a deterministic function of the block and the ledger below it."""
        try:
            block = common_pb2.Block.FromString(value.body)
        except DecodeError:
            return False
        config, envelopes = self.config, [bytes(d) for d in block.data.data]
        if (
            int(block.header.number) != height
            or height != self.store.height
            or bytes(block.header.previous_hash) != self.store.last_header_hash
            or bytes(block.header.data_hash) != data_hash(envelopes)
            or header_hash(block.header) != value.value_id
            or not 1 <= len(envelopes) <= config.batch_max_count
        ):
            return False
        try:
            at = block_time(block)
            if is_config_block(block):  # alone, signed by a consenter, what its update makes
                check_config_transaction(config, envelopes[0], at=at)
                tx_id = parse_envelope(envelopes[0]).header.tx_id
                return self.store.tx_location(tx_id) is None
            tx_ids = set()
            for envelope in envelopes:
                if parse_envelope(envelope).header.header_type != ENDORSER_TRANSACTION:
                    return False
                if self._mempool.verified(envelope):
                    tx_id = parse_envelope(envelope).header.tx_id
                else:
                    tx_id = admit(config, envelope, now=at)
                    self.verified["transactions"] += 1
                if tx_id in tx_ids or self.store.tx_location(tx_id) is not None:
                    return False
                tx_ids.add(tx_id)
        except MedallianceError:
            return False
        return True

    # --- decisions ------------------------------------------------------------------------------

    def _commit(self, commit: Commit) -> None:
        if commit.height < self.store.height:
            return  # stored already by catch-up
        block = common_pb2.Block.FromString(commit.value.body)
        precommits = commit.certificate.precommits
        write_certificate(
            block,
            round=commit.certificate.round,
            signatures=[(self._identity_bytes[v.voter], v.signature) for v in precommits],
            last_config=0,
        )
        self._append(block)
        log.info(
            "block decided",
            extra={
                "channel": self.channel_id,
                "block": commit.height,
                "round": commit.certificate.round,
                "txs": len(block.data.data),
            },
        )

    def _append(self, block: common_pb2.Block) -> None:
        tx_ids = [parse_envelope(bytes(d)).header.tx_id for d in block.data.data]
        self.store.append(block, tx_ids)
        self.feed.published(self.store.height, [])
        if is_config_block(block):
            self._install(ChannelConfig.from_block(block))
        self._mempool.remove(tx_ids)
        if self._mempool:
            self._queue.put_nowait(TxAvailable())

    def _install(self, config: ChannelConfig) -> None:
        """A config block is stored: its consenter set decides from the next height on."""
        self.config = config
        self.validators = ValidatorSet(tuple(c.name for c in config.consenter_set))
        self._identity_bytes.update({c.name: c.identity for c in config.consenter_set})
        self._name_of.update({c.identity: c.name for c in config.consenter_set})
        self._identities.clear()  # re-read: a changed MSP may have revoked a certificate
        self._reconfigured = True
        log.info(
            "channel configuration updated",
            extra={
                "channel": self.channel_id,
                "sequence": config.sequence,
                "consenters": list(self.validators.ids),
            },
        )

    def _restart(self) -> None:
        """Begin the next height under the new consenter set (messages verified against the
        old one are dropped with the old core; retransmission brings them again)."""
        self._reconfigured = False
        self._want = None
        if not self.validators.contains(self.name):
            self.retired = True
            log.warning("no longer a consenter", extra={"channel": self.channel_id})
            return
        self.machine = ConsensusMachine(
            self.channel_id, _CoreSigner(self.name, self._signer), self._timeouts
        )
        start = Start(
            height=self.store.height,
            validators=self.validators,
            hard_state=self._load_hard_state(),
            last_decision=self._last_decision(),
        )
        self._execute(self.machine.step(start))

    def _decided(self, block: common_pb2.Block) -> tuple[Value, Certificate]:
        """The core's view of a stored, certified block: its value and its certificate."""
        plain = new_block(
            int(block.header.number),
            bytes(block.header.previous_hash),
            [bytes(d) for d in block.data.data],
        )
        value = Value(header_hash(block.header), plain.SerializeToString())
        certificate = read_certificate(block)
        if certificate is None:
            raise InvalidArgument(f"block {block.header.number} has no commit certificate")
        votes = tuple(
            Vote(
                Kind.PRECOMMIT,
                self.channel_id,
                int(block.header.number),
                certificate.round,
                value.value_id,
                self._name_of[identity],
                signature,
            )
            for identity, signature in certificate.signatures
        )
        return value, Certificate(votes)

    def _last_decision(self) -> Commit | None:
        tip = self.store.height - 1
        if tip < 1:
            return None
        value, certificate = self._decided(self.store.get_block(tip))
        return Commit(tip, value, certificate)

    # --- verification of peers' messages --------------------------------------------------------

    def _verify(self, message: Message) -> None:
        if message.channel != self.channel_id:
            raise InvalidArgument(f"message for channel {message.channel!r}")
        match message:
            case Proposal():
                self._check_value(message.value)
                self._check_signed(message.proposer, message.signed_bytes(), message.signature)
                for vote in message.pol:
                    self._check_signed(vote.voter, vote.signed_bytes(), vote.signature)
            case Vote():
                self._check_signed(message.voter, message.signed_bytes(), message.signature)
            case Decision():
                self._check_value(message.value)
                for vote in message.certificate.precommits:
                    self._check_signed(vote.voter, vote.signed_bytes(), vote.signature)
            case Status():
                if not self.validators.contains(message.sender):
                    raise InvalidArgument(f"{message.sender} is not a consenter")

    def _check_value(self, value: Value) -> None:
        try:
            block = common_pb2.Block.FromString(value.body)
        except DecodeError:
            raise InvalidArgument("a proposed block does not parse") from None
        if header_hash(block.header) != value.value_id:
            raise InvalidArgument("a proposed block does not match its id")

    def _check_signed(self, signer: str, payload: bytes, signature: bytes) -> None:
        identity = self._identity(signer)
        self.verified["consensus"] += 1
        if not identity.verify(signature, payload):
            raise InvalidArgument(f"a signature of {signer} does not verify")

    def _identity(self, name: str) -> Identity:
        if name not in self._identity_bytes:
            raise InvalidArgument(f"{name} is not a consenter of {self.channel_id}")
        if name not in self._identities:
            self._identities[name] = self.config.msps.deserialize(
                self._identity_bytes[name], at=self._now()
            )
        return self._identities[name]

    # --- hard state ---------------------------------------------------------------------------

    def _load_hard_state(self) -> HardState | None:
        latest = self._log.latest
        return None if latest is None else consensus_wire.decode_hard_state(latest)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._log.close()
