"""One channel on one peer: its block store, world state, configuration and commit path.

The block store is the truth; the world state is derived from it. A block is made durable in the
store before its writes reach the state, so a peer killed between the two restarts by replaying
the valid writes of the blocks the state has not seen (their validation codes are in the stored
TRANSACTIONS_FILTER). Nothing else is ever half-written: each step is one atomic append or one
database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.peer import transaction_pb2

from medalliance.contracts.collections import Collection
from medalliance.contracts.endorser import ChannelView
from medalliance.contracts.lifecycle import committed_collections, committed_definition
from medalliance.database_url import DatabaseUrl
from medalliance.errors import (
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from medalliance.ledger.block import (
    data_hash,
    parse_block,
    set_transactions_filter,
    transactions_filter,
)
from medalliance.ledger.block_signature import block_time
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.committed_reads import CommittedReads
from medalliance.ledger.config_update import check_config_transaction, is_config_block
from medalliance.ledger.mvcc import metadata_writes_of, writes_of
from medalliance.ledger.private_hashing import parse_hashed
from medalliance.ledger.snapshot import config_block_at
from medalliance.ledger.state import StateReader, TxWrites
from medalliance.ledger.tx import (
    EnvelopeView,
    MalformedTransaction,
    parse_envelope,
    parse_envelopes,
    parse_rwset,
)
from medalliance.ledger.validation import (
    VALID,
    BlockResult,
    NamespacePolicy,
    TxResult,
    validate_block,
)
from medalliance.ledger.world_state import (
    StateLocation,
    WorldState,
    open_ledger_state,
    recorded_location,
)
from medalliance.node.collection_store import CollectionStore, Missing
from medalliance.node.collector import collector_paused

log = logging.getLogger(__name__)

CommitListener = Callable[[common_pb2.Block, BlockResult], None]


class PeerChannel:
    """A channel's ledger on a peer. Not thread-safe: the node serialises commits."""

    def __init__(self, store: BlockStore, state: WorldState, config: ChannelConfig) -> None:
        self._store = store
        self._state = state
        self.config = config
        self._listeners: list[CommitListener] = []
        self.private: CollectionStore | None = None  # this peer's private data of the channel
        # What endorsements read of the committed state, kept until the next block (renewed by
        # every commit and replay: ledger/committed_reads.py)
        self._reads = CommittedReads(state)

    @classmethod
    def open(
        cls,
        directory: Path,
        genesis: common_pb2.Block | None = None,
        *,
        state_at: StateLocation | None = None,
    ) -> PeerChannel:
        """Open a channel's ledger, creating it from `genesis` when it does not exist yet.

        The world state lives at `state_at` (default: SQLite in `directory`). Replays blocks the
        world state lags behind (crash recovery; a new, empty state is built from the blocks).
        """
        directory.mkdir(parents=True, exist_ok=True)
        store = BlockStore.open(directory / "blocks")
        try:
            state = open_ledger_state(directory, state_at or StateLocation(None, ""))
        except BaseException:
            store.close()
            raise
        if store.height == 0:
            if genesis is None:
                raise PreconditionFailed(f"{directory} holds no ledger; join with a genesis block")
            config = ChannelConfig.from_block(genesis)
            set_transactions_filter(genesis, [VALID] * len(genesis.data.data))
            store.append(genesis)
            if state.savepoint == -1:
                state.apply_block(0, [])  # the genesis block writes no state
        else:
            config = _stored_config(store)
            if genesis is not None and not _same_channel(store, genesis):
                raise InvalidArgument(f"{directory} holds a different channel's ledger")
            if store.first_block and state.savepoint < store.first_block - 1:
                raise PreconditionFailed(
                    f"{directory} was joined from a snapshot but its world state is behind it "
                    "(lost or cleared); remove the folder and join from the snapshot again"
                )
        channel = cls(store, state, config)
        channel.recover()
        return channel

    @property
    def channel_id(self) -> str:
        return self.config.channel_id

    @property
    def height(self) -> int:
        return self._store.height

    @property
    def store(self) -> BlockStore:
        return self._store

    @property
    def state(self) -> WorldState:
        return self._state

    @property
    def view(self) -> ChannelView:
        if self.private is None:
            return ChannelView(self.config, self._reads, self._store.contains_tx)
        return ChannelView(self.config, self._reads, self._store.contains_tx, self.private)

    def attach_private(self, store: CollectionStore) -> list[Missing]:
        """Keep this channel's private data in `store`; applies the private side of blocks it
        has not seen (a peer stopped between a block's state and its private data). The gaps."""
        self.private = store
        gaps = []
        for number in range(store.savepoint + 1, self._store.height):
            gaps.extend(store.apply_block(self._store.get_block(number), self.collections_of))
        return gaps

    def collections_of(self, namespace: str) -> Mapping[str, Collection]:
        return committed_collections(self._state, namespace)

    def add_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def commit(self, block: common_pb2.Block) -> BlockResult:
        """Verify, validate and commit the next block; raises and changes nothing if it is bad."""
        with collector_paused():
            try:
                return self._commit(block)
            except BaseException:
                self._reads = CommittedReads(self._state)  # whatever a failure half-way left
                raise

    def _commit(self, block: common_pb2.Block) -> BlockResult:
        number = int(block.header.number)
        if number != self._store.height:
            raise PreconditionFailed(
                f"channel {self.channel_id} expects block {self._store.height}, got {number}"
            )
        # Read out of the message once: hashed, parsed and stored from these very bytes.
        envelopes = list(block.data.data)
        base = self._store.snapshot_base
        if base is not None and number == base.first_block:
            # The first block after a snapshot: it must name the snapshot's block as its
            # predecessor, or the snapshot is not of the chain the ordering service serves.
            problem = _snapshot_link_problem(base.last_hash, block, envelopes)
        else:
            problem = _chain_link_problem(self._store.last_header_hash, block, envelopes)
        if problem is not None:
            raise InvalidArgument(f"block {number} of {self.channel_id}: {problem}")
        views = parse_envelopes(envelopes)  # once, for the block's time and for validation
        self._check_orderer_signatures(block, views)
        new_config = None
        if is_config_block(block):
            result, new_config = self._validate_config(block)
        else:
            result = validate_block(
                block,
                config=self.config,
                policy_for=self._policy_for,
                state=self._state,
                committed_txs=self._store.committed_among,
                views=views,
            )
        set_transactions_filter(block, result.codes)
        # the chain link and data hash were checked above, on these very bytes
        self._store.append(
            block, [t.tx_id for t in result.txs], data_hash_checked=True, envelopes=envelopes
        )
        self._apply(number, result.txs)
        if self.private is not None:
            committed = [(t.tx_num, t.tx_id, t.hashed) for t in result.txs if t.code == VALID]
            self.private.apply_block(block, self.collections_of, None if new_config else committed)
        if new_config is not None:  # in force from the next block on
            self.config = ChannelConfig.from_config(new_config, self.channel_id)
            log.info(
                "channel configuration updated",
                extra={
                    "channel": self.channel_id,
                    "block": number,
                    "sequence": new_config.sequence,
                },
            )
        # Read afresh from here on, before any listener can wake an endorsement: nothing endorsed
        # after this block sees a definition or a key's policy from before it.
        self._reads = CommittedReads(self._state)
        valid = sum(1 for code in result.codes if code == VALID)
        log.info(
            "block committed",
            extra={
                "channel": self.channel_id,
                "block": number,
                "txs": len(result.txs),
                "valid": valid,
            },
        )
        for listener in self._listeners:
            listener(block, result)
        return result

    def blocks(self, start: int = 0) -> Iterator[common_pb2.Block]:
        return self._store.iter_blocks(start)

    def recover(self) -> int:
        """Replay the valid writes of stored blocks the state has not applied; returns how many."""
        replayed = 0
        for number in range(self._state.savepoint + 1, self._store.height):
            block = self._store.get_block(number)
            codes = transactions_filter(block)
            txs = []
            for tx_num, data in enumerate(block.data.data):
                if number == 0 or codes[tx_num] != VALID:
                    continue
                view = parse_envelope(bytes(data))
                rwset = view.endorser_tx().rwset
                ns_rwsets = (
                    *parse_rwset(rwset),
                    *((h.state_namespace, h.rwset) for h in parse_hashed(rwset)),
                )
                txs.append(
                    TxWrites(
                        tx_num,
                        view.tx_id,
                        view.header.timestamp_ms,
                        writes_of(ns_rwsets),
                        metadata_writes_of(ns_rwsets),
                    )
                )
            self._state.apply_block(number, txs)
            self._reads = CommittedReads(self._state)
            replayed += 1
        if replayed:
            log.warning(
                "world state replayed from the block store",
                extra={"channel": self.channel_id, "blocks": replayed},
            )
        return replayed

    def close(self) -> None:
        if self.private is not None:
            self.private.close()
        self._state.close()
        self._store.close()

    def _apply(self, number: int, txs: tuple[TxResult, ...]) -> None:
        self._state.apply_block(
            number,
            [
                TxWrites(t.tx_num, t.tx_id, t.timestamp_ms, t.writes, t.metadata)
                for t in txs
                if t.code == VALID
            ],
        )

    def _validate_config(
        self, block: common_pb2.Block
    ) -> tuple[BlockResult, configtx_pb2.Config | None]:
        """A config block's one transaction: VALID with the configuration it installs, or
        INVALID_CONFIG_TRANSACTION (the configuration stays)."""
        view = parse_envelope(bytes(block.data.data[0]))
        try:
            config = check_config_transaction(
                self.config, bytes(block.data.data[0]), at=block_time(block)
            )
        except MedallianceError as exc:
            log.warning(
                "config transaction refused", extra={"channel": self.channel_id, "reason": str(exc)}
            )
            code = transaction_pb2.TxValidationCode.Value("INVALID_CONFIG_TRANSACTION")
            return BlockResult(
                int(block.header.number),
                (TxResult(0, view.tx_id, code, view.header.timestamp_ms, reason=str(exc)),),
            ), None
        result = TxResult(0, view.tx_id, VALID, view.header.timestamp_ms)
        return BlockResult(int(block.header.number), (result,)), config

    def _policy_for(self, namespace: str) -> NamespacePolicy | None:
        return namespace_policy(self._state, namespace)

    def _check_orderer_signatures(
        self, block: common_pb2.Block, views: Sequence[EnvelopeView | MalformedTransaction]
    ) -> None:
        problem = self.config.certificate_problem(block, views)
        if problem is not None:
            raise PermissionDenied(
                f"block {block.header.number} of {self.channel_id} is not certified by the "
                f"ordering service: {problem}"
            )


def _stored_config(store: BlockStore) -> ChannelConfig:
    """The configuration in force at the store's tip: the newest valid config block it holds,
    or, for a ledger joined from a snapshot with none since, the snapshot's config block."""
    return ChannelConfig.from_block(parse_block(config_block_at(store, store.height - 1)))


def _same_channel(store: BlockStore, genesis: common_pb2.Block) -> bool:
    if store.snapshot_base is None:
        return bool(genesis.header.data_hash == store.get_block(0).header.data_hash)
    config = ChannelConfig.from_block(parse_block(store.snapshot_base.config_block))
    return config.channel_id == ChannelConfig.from_block(genesis).channel_id


def _chain_link_problem(
    last_hash: bytes, block: common_pb2.Block, envelopes: Sequence[bytes]
) -> str | None:
    """`verify_chain_link` against the stored tip's header hash, which the store keeps, rather
    than reading and parsing the whole previous block back from its file for its header."""
    number = block.header.number
    if bytes(block.header.previous_hash) != last_hash:
        return f"previous hash of block {number} does not match block {number - 1}"
    if bytes(block.header.data_hash) != data_hash(envelopes):
        return f"data hash of block {number} does not match its transactions"
    return None


def _snapshot_link_problem(
    last_hash: bytes, block: common_pb2.Block, envelopes: Sequence[bytes]
) -> str | None:
    number = block.header.number
    if bytes(block.header.previous_hash) != last_hash:
        return (
            f"previous hash of block {number} does not match the last block hash of the "
            "snapshot this ledger was joined from: the snapshot is not of this channel's chain; "
            "remove the ledger folder and join from a snapshot taken by a trusted peer"
        )
    if bytes(block.header.data_hash) != data_hash(envelopes):
        return f"data hash of block {number} does not match its transactions"
    return None


def namespace_policy(state: StateReader, namespace: str) -> NamespacePolicy | None:
    """What validation needs of a contract's committed definition in `state`, if any."""
    definition = committed_definition(state, namespace)
    if definition is None:
        return None
    return NamespacePolicy(
        definition.endorsement_policy,
        active=not definition.deregistered,
        collections=committed_collections(state, namespace),
    )


@dataclass(frozen=True, slots=True)
class RebuildResult:
    channel_id: str
    blocks_replayed: int
    state_hash: str


def rebuild_state(ledger_dir: Path, state_database: DatabaseUrl | None = None) -> RebuildResult:
    """Drop a ledger's world state and re-derive it from the block store.

    The state is where the peer recorded it (SQLite in the folder, or its PostgreSQL schema;
    `state_database` overrides the recorded URL, e.g. with a password). Safe to interrupt: an
    emptied state is simply replayed again on the next open.
    """
    if not (ledger_dir / "blocks").is_dir():
        raise NotFound(f"{ledger_dir} is not a ledger directory (it holds no blocks/)")
    with BlockStore.open(ledger_dir / "blocks") as store:
        if store.snapshot_base is not None:
            raise PreconditionFailed(
                f"{ledger_dir} was joined from a snapshot at block {store.first_block - 1}: "
                "its state cannot be derived from its blocks alone; join it again from a "
                "snapshot (`medalliance ledger snapshot join`)"
            )
    location = recorded_location(ledger_dir, state_database)
    state = open_ledger_state(ledger_dir, location)
    try:
        state.clear()
    finally:
        state.close()
    channel = PeerChannel.open(ledger_dir, state_at=location)
    try:
        return RebuildResult(
            channel.channel_id, channel.height - 1, channel.state.state_hash().hex()
        )
    finally:
        channel.close()
