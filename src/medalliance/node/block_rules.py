"""What the ordering replica orders on a channel: Fabric blocks (consensus/replica.py's
`Application`).

- admission: signature, Writers policy, size (`ordering.admit`), type, a config update must
  apply now, not in the chain yet;
- proposing: a batch becomes the next block on the chain; a config update becomes the CONFIG
  transaction it makes, signed by this node, alone in its block;
- valid(v): the block extends the chain (number, previous hash, data hash), holds
  1..MaxMessageCount distinct, not yet ordered transactions that each pass admission as of the
  block's time — a deterministic verdict on every correct node, whatever each one has pending;
- reconfiguration: a decided config block's channel config, its consenter set (in the config's
  order: it decides the proposer rotation) and its batch size and timeout as cut rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from medalliance.consensus.messages import Value
from medalliance.consensus.pending import Batch, CutRules
from medalliance.consensus.replica import Admitted, Reconfiguration
from medalliance.consensus.validators import ValidatorSet
from medalliance.errors import DuplicateTransaction, InvalidArgument, MedallianceError
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import data_hash, header_hash, new_block
from medalliance.ledger.block_signature import block_time, newest
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.config_update import (
    CONFIG_UPDATE,
    apply_update,
    check_config_transaction,
    config_transaction,
    is_config_block,
    update_of,
)
from medalliance.ledger.tx import (
    ENDORSER_TRANSACTION,
    TIME_WINDOW,
    EnvelopeView,
    SigningIdentity,
    stamped_ahead,
    stamped_at,
)
from medalliance.node.ordering import admit_parsed, parse, parsed

TX_IDS_KEPT = 16  # values whose tx ids are remembered (a few rounds of the current height)

TICK_MS = 10  # the replica's clock ticks (node/bft_channel.py and the embedded network)


def cut_rules(config: ChannelConfig) -> CutRules:
    """The channel's BatchSize and BatchTimeout as the replica's cut rules, in ticks."""
    ticks = max(1, config.batch_timeout_ms // TICK_MS)
    return CutRules(config.batch_max_count, config.batch_preferred_max_bytes, ticks)


def validators_of(config: ChannelConfig) -> ValidatorSet:
    return ValidatorSet(tuple(c.name for c in config.consenter_set))


class ConsenterSigner:
    """A consenter's key as the consensus machine's `Signer`, named as in consensus messages."""

    def __init__(self, name: str, signer: SigningIdentity) -> None:
        self.node_id = name
        self._signer = signer

    def sign(self, payload: bytes) -> bytes:
        return self._signer.sign(payload)


class BlockRules:
    """Reads the chain (`store`) and the configuration in force (`config()`); writes nothing."""

    def __init__(
        self,
        *,
        config: Callable[[], ChannelConfig],
        store: BlockStore,
        signer: SigningIdentity,
        now: Callable[[], dt.datetime],
    ) -> None:
        self._config = config
        self._store = store
        self._signer = signer
        self._now = now  # only for the timestamp of this node's own CONFIG transactions
        # ECDSA verifications of transaction signatures this channel's admission and validity
        # made (a check answered from identity/verified.py's memory costs none), and the
        # checks themselves: each transaction is checked at admission and again in valid(v).
        self.verified = 0
        self.checked = 0
        # value id → its transactions' ids, from propose/valid, so that the decision does not
        # parse the block again (`tx_ids`). A memo of a pure function of the value: the id is
        # the header hash, which commits to the envelopes (valid checks both hashes).
        self._tx_ids: dict[bytes, tuple[str, ...]] = {}

    def admit(self, envelope: bytes, at: dt.datetime) -> Admitted:
        config = self._config()
        view = parse(config, envelope)
        # valid(v) judges a block's creators at its newest timestamp (block_time): a stamp far
        # ahead would make every block that holds it invalid. (An old stamp makes no block's
        # time but its own: judged then, by `unorderable`, as by valid(v); Fabric lets a client
        # submit long after it was endorsed.)
        if stamped_ahead(view.header.timestamp_ms, at):
            raise InvalidArgument(
                f"the transaction is stamped more than {TIME_WINDOW.total_seconds() / 60:g} "
                "minutes ahead of this ordering node's clock: check the client's clock"
            )
        tx_id = self._check(config, view, at)
        header_type = view.header.header_type
        if header_type == CONFIG_UPDATE:  # refused now if it could not apply
            apply_update(config, update_of(view), at=at)
        elif header_type != ENDORSER_TRANSACTION:
            raise InvalidArgument(
                f"Broadcast takes endorser transactions and config updates, not type {header_type}"
            )
        if self._store.tx_location(tx_id) is not None:
            raise DuplicateTransaction(tx_id)
        return Admitted(tx_id, alone=header_type == CONFIG_UPDATE)

    def unorderable(self, batch: Batch) -> tuple[str, ...]:
        """What valid(v) would refuse of `batch` now (each envelope as of the newest timestamp
        among them). Parses and verifications are remembered from admission: this costs no
        ECDSA unless the configuration changed what a check needs."""
        config = self._config()
        views: dict[str, EnvelopeView] = {}
        stale: list[str] = []
        for tx_id, envelope in zip(batch.tx_ids, batch.envelopes, strict=True):
            try:
                view = parse(config, envelope)
                stamped_at(view.header.timestamp_ms)  # a stamp no date holds makes no block time
            except MedallianceError:
                stale.append(tx_id)
            else:
                views[tx_id] = view
        if views:
            at = newest(v.header.timestamp_ms for v in views.values())
            for tx_id, view in views.items():
                try:
                    admit_parsed(config, view, now=at)
                except MedallianceError:
                    stale.append(tx_id)
        return tuple(stale)

    def propose(self, height: int, round: int, batch: Batch) -> Value | None:
        if height != self._store.height:
            return None
        envelopes = list(batch.envelopes)
        if batch.alone:
            now = self._now()
            update = envelopes[0]
            try:
                config = apply_update(self._config(), update_of(parsed(update)), at=now)
            except MedallianceError:  # stale since admission: the submitter must redo it
                return None
            timestamp_ms = int(now.timestamp() * 1000)
            envelopes = [
                config_transaction(config, update, self._signer, timestamp_ms=timestamp_ms)
            ]
        block = new_block(height, self._store.last_header_hash, envelopes)
        value = Value(header_hash(block.header), block.SerializeToString())
        if not batch.alone:
            self._remember(value.value_id, batch.tx_ids)
        return value

    def valid(self, height: int, value: Value) -> bool:
        try:
            block = common_pb2.Block.FromString(value.body)
        except DecodeError:
            return False
        config, store = self._config(), self._store
        envelopes = [bytes(d) for d in block.data.data]
        if (
            int(block.header.number) != height
            or height != store.height
            or bytes(block.header.previous_hash) != store.last_header_hash
            or bytes(block.header.data_hash) != data_hash(envelopes)
            or header_hash(block.header) != value.value_id
            or not 1 <= len(envelopes) <= config.batch_max_count
        ):
            return False
        try:
            if is_config_block(block):  # alone, signed by a consenter, what its update makes
                at = block_time(block)
                check_config_transaction(config, envelopes[0], at=at)
                tx_id = parsed(envelopes[0]).header.tx_id
                return store.tx_location(tx_id) is None
            views = [parse(config, envelope) for envelope in envelopes]
            # block_time from the views: every envelope of a valid non-config block parses
            at = newest(v.header.timestamp_ms for v in views)
            tx_ids = set()
            ordered = []
            for view in views:
                if view.header.header_type != ENDORSER_TRANSACTION:
                    return False
                tx_id = self._check(config, view, at)
                if tx_id in tx_ids:
                    return False
                tx_ids.add(tx_id)
                ordered.append(tx_id)
            if store.committed_among(ordered):  # one statement for the block, not one per tx
                return False
        except MedallianceError:
            return False
        self._remember(value.value_id, tuple(ordered))
        return True

    def tx_ids(self, value: Value) -> tuple[str, ...]:
        known = self._tx_ids.get(value.value_id)
        if known is not None:
            return known
        block = common_pb2.Block.FromString(value.body)
        return tuple(parsed(bytes(d)).header.tx_id for d in block.data.data)

    def _check(self, config: ChannelConfig, view: EnvelopeView, at: dt.datetime) -> str:
        """`admit_parsed`, counted: a check, and the ECDSA verifications it made."""
        before = VERIFIED.verified  # per process: an ordering node verifies in its loop only
        try:
            return admit_parsed(config, view, now=at)
        finally:
            self.checked += 1
            self.verified += VERIFIED.verified - before

    def _remember(self, value_id: bytes, tx_ids: tuple[str, ...]) -> None:
        if len(self._tx_ids) >= TX_IDS_KEPT:  # the oldest goes: values of past heights
            del self._tx_ids[next(iter(self._tx_ids))]
        self._tx_ids[value_id] = tx_ids

    def reconfiguration(self, height: int, value: Value) -> Reconfiguration | None:
        block = common_pb2.Block.FromString(value.body)
        if not is_config_block(block):
            return None
        config = ChannelConfig.from_block(block)
        return Reconfiguration(config, validators_of(config), cut_rules(config))
