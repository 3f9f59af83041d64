"""The in-process ordering stage of one channel: admit transactions, cut, number and sign blocks.

Broadcast admission follows Fabric's orderer: the envelope must parse, its creator must be a valid
identity of a channel member that signed the payload and satisfies the channel's Writers policy,
it must fit `absolute_max_bytes`, and a tx id is admitted once. Cutting is the pure
`BlockCutter`; time reaches it as ticks from the caller. The BFT ordering service replaces this
stage behind the same `broadcast` / `tick` interface.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from fabric_protos.common import common_pb2

from medalliance.consensus.block_cutter import BlockCut, BlockCutter, Submitted, Tick
from medalliance.errors import (
    BadSignature,
    DuplicateTransaction,
    InvalidArgument,
    PermissionDenied,
)
from medalliance.identity.policy import SignedData
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.commit_certificate import precommit_bytes, quorum, write_certificate
from medalliance.ledger.tx import MalformedTransaction, SigningIdentity, parse_envelope

log = logging.getLogger(__name__)

WRITERS_POLICY = "/Channel/Writers"
ADMITTED_WINDOW = 100_000  # tx ids remembered for duplicate refusal at admission


def admit(config: ChannelConfig, envelope: bytes, *, now: dt.datetime) -> str:
    """Fabric's Broadcast admission for one envelope: size, form, channel, the creator's valid
    identity and signature, the channel's Writers policy. Returns the tx id; typed errors."""
    if len(envelope) > config.batch_absolute_max_bytes:
        raise InvalidArgument(
            f"transaction of {len(envelope)} bytes exceeds the channel's limit of "
            f"{config.batch_absolute_max_bytes} bytes"
        )
    try:
        view = parse_envelope(envelope)
    except MalformedTransaction as exc:
        raise InvalidArgument(str(exc)) from exc
    header = view.header
    if header.channel_id != config.channel_id:
        raise InvalidArgument(
            f"transaction for channel {header.channel_id!r} sent to {config.channel_id!r}"
        )
    if not view.signature:
        raise InvalidArgument("the transaction envelope must be signed")
    creator = config.msps.deserialize(header.creator, at=now)
    if not creator.verify(view.signature, view.payload_bytes):
        raise BadSignature("the envelope signature does not verify against its creator")
    signed = [SignedData(view.payload_bytes, header.creator, view.signature)]
    if not config.evaluate_policy(WRITERS_POLICY, signed, at=now):
        raise PermissionDenied(f"{creator.msp_id} may not write to {config.channel_id}")
    return str(header.tx_id)


class OrderingStage:
    """Orders one channel's transactions into certified blocks and hands each to `deliver`.

    `signers` are the channel's consenters (all in this process, as in the embedded network):
    each block carries a commit certificate of a quorum of them."""

    def __init__(
        self,
        config: ChannelConfig,
        signers: Sequence[SigningIdentity],
        deliver: Callable[[common_pb2.Block], None],
        *,
        next_number: int,
        previous_hash: bytes,
        tick_ms: int = 10,
    ) -> None:
        self._config = config
        self._signers = tuple(signers)
        self._deliver = deliver
        self._next_number = next_number
        self._previous_hash = previous_hash
        self._tick_ms = tick_ms
        self._cutter = BlockCutter(
            count_max=config.batch_max_count,
            preferred_max_bytes=config.batch_preferred_max_bytes,
            timeout_ticks=self.timeout_ticks,
        )
        self._now_ticks = 0
        # Recently admitted tx ids, oldest first. Bounded: a replay older than this window is
        # still caught by every peer (DUPLICATE_TXID), so the set need not grow forever.
        self._admitted: collections.OrderedDict[str, None] = collections.OrderedDict()

    @property
    def pending_count(self) -> int:
        return self._cutter.pending_count

    @property
    def timeout_ticks(self) -> int:
        return max(1, self._config.batch_timeout_ms // self._tick_ms)

    def broadcast(self, envelope: bytes, *, now: dt.datetime) -> str:
        """Admit one signed transaction envelope; returns its tx id or raises a typed error."""
        tx_id = admit(self._config, envelope, now=now)
        if tx_id in self._admitted:
            raise DuplicateTransaction(tx_id)
        self._admitted[tx_id] = None
        if len(self._admitted) > ADMITTED_WINDOW:
            self._admitted.popitem(last=False)
        for cut in self._cutter.step(Submitted(tx_id, envelope)):
            self._emit(cut)
        return tx_id

    def tick(self, ticks: int = 1) -> None:
        """Advance this stage's clock; cuts a batch whose oldest transaction timed out."""
        self._now_ticks += ticks
        for cut in self._cutter.step(Tick(self._now_ticks)):
            self._emit(cut)

    def flush(self) -> None:
        """Advance the clock past the batch timeout, so that any pending batch is cut now."""
        if self._cutter.pending_count:
            self.tick(self.timeout_ticks)

    def _emit(self, cut: BlockCut) -> None:
        block = new_block(self._next_number, self._previous_hash, cut.envelopes)
        # In one process every consenter is present: a quorum of them precommits round 0.
        precommit = precommit_bytes(self._config.channel_id, block, 0)
        signers = self._signers[: quorum(len(self._signers))]
        write_certificate(
            block,
            round=0,
            signatures=[(s.serialized_identity, s.sign(precommit)) for s in signers],
            last_config=0,
        )
        self._next_number += 1
        self._previous_hash = header_hash(block.header)
        log.info(
            "block cut",
            extra={
                "channel": self._config.channel_id,
                "block": block.header.number,
                "txs": len(cut.tx_ids),
            },
        )
        self._deliver(block)
