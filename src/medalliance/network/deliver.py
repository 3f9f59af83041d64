"""Fabric's Deliver: stream a channel's blocks to a signed seek request (protocol doc §3.6).

Shared by peers (`protos.Deliver`, Readers = /Channel/Application/Readers) and ordering nodes
(`orderer.AtomicBroadcast/Deliver`, Readers = /Channel/Readers). The request checks are a pure
function (`check_seek`); `deliver` drives one bidi stream: each seek envelope is answered with
blocks from start to stop, then a SUCCESS status, and the next envelope is read. A bad request
ends the call with a status response, as Fabric's `common/deliver` does.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import (
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from medalliance.identity.policy import SignedData
from medalliance.ledger.block_encoding import varint
from medalliance.ledger.block_events import filtered_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.seek import BLOCK_UNTIL_READY, DELIVER_SEEK_INFO
from medalliance.ledger.tx import MalformedTransaction, outside_time_window, parse_envelope
from medalliance.network.block_feed import BlockFeed
from medalliance.network.fabric_status import FABRIC_STATUSES

log = logging.getLogger(__name__)
# DeliverResponse's field keys: status (1, varint), block (2, length-delimited)
_RESPONSE_STATUS, _RESPONSE_BLOCK = b"\x08", b"\x12"

Status = common_pb2.Status
Content = Literal["block", "filtered", "private"]
# (channel, block number, requester's MSP id) -> the private write sets, by transaction number in
# the block, that this peer holds and the requester may read (`DeliverWithPrivateData`)
PrivateData = Callable[[str, int, str], Mapping[int, rwset_pb2.TxPvtReadWriteSet]]


def no_private_data(
    channel_id: str, block_number: int, msp_id: str
) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
    return {}


class DeliverSource(Protocol):
    """One channel's blocks as a node holds them."""

    @property
    def config(self) -> ChannelConfig: ...

    @property
    def store(self) -> BlockStore: ...

    @property
    def feed(self) -> BlockFeed: ...


@dataclass(frozen=True, slots=True)
class SeekError(Exception):
    """A refused seek: its error category and why."""

    category: type[MedallianceError]
    reason: str

    @property
    def status(self) -> int:
        """The Fabric status that answers it (the table in network/fabric_status.py)."""
        return FABRIC_STATUSES[self.category]


@dataclass(frozen=True, slots=True)
class Seek:
    """A checked seek request: the channel, the first block and the last (None = forever)."""

    channel_id: str
    start: int
    stop: int | None
    wait: bool
    requester_msp: str = ""


def check_seek(
    envelope: common_pb2.Envelope,
    *,
    source_for: Callable[[str], DeliverSource],
    readers_policy: str,
    now: dt.datetime,
) -> Seek:
    """Validate a seek envelope and resolve its positions; raises `SeekError(status, reason)`."""
    try:
        view = parse_envelope(envelope.SerializeToString())
    except MalformedTransaction as exc:
        raise SeekError(InvalidArgument, str(exc)) from None
    header = view.header
    if header.header_type != DELIVER_SEEK_INFO:
        raise SeekError(InvalidArgument, f"header type {header.header_type} is not a seek")
    if outside_time_window(header.timestamp_ms, now):
        raise SeekError(
            InvalidArgument, "request timestamp is more than 15 minutes from the server's clock"
        )
    try:
        source = source_for(header.channel_id)
    except NotFound:
        raise SeekError(NotFound, f"channel {header.channel_id!r} not found") from None
    config = source.config
    try:
        creator = config.msps.deserialize(header.creator, at=now)
        allowed = creator.verify(view.signature, view.payload_bytes) and config.evaluate_policy(
            readers_policy, [SignedData(view.payload_bytes, header.creator, view.signature)], at=now
        )
    except MedallianceError:
        allowed = False
    if not allowed:
        raise SeekError(PermissionDenied, f"access denied by {readers_policy}")
    seek = ab_pb2.SeekInfo()
    try:
        seek.ParseFromString(view.data)
    except DecodeError:
        raise SeekError(InvalidArgument, "malformed SeekInfo") from None
    if not seek.HasField("start") or not seek.HasField("stop"):
        raise SeekError(InvalidArgument, "a seek needs a start and a stop position")
    height = source.feed.height
    first = source.store.first_block  # > 0 on a peer joined from a snapshot
    start = _position(seek.start, height, start=None)
    if seek.start.WhichOneof("Type") == "oldest":
        start = first
    if start > height:
        raise SeekError(NotFound, f"block {start} is beyond the ledger height {height}")
    if start < first:
        raise SeekError(
            NotFound,
            f"block {start} precedes this peer's ledger, joined from a snapshot at block "
            f"{first - 1}; ask an ordering node or a peer that holds it",
        )
    stop = _position(seek.stop, height, start=start)
    if stop is not None and stop < start:
        raise SeekError(InvalidArgument, f"stop block {stop} is before start block {start}")
    wait = seek.behavior == BLOCK_UNTIL_READY
    return Seek(header.channel_id, start, stop, wait, creator.msp_id)


def _position(position: ab_pb2.SeekPosition, height: int, *, start: int | None) -> int:
    kind = position.WhichOneof("Type")
    if kind == "oldest":
        return 0 if start is None else start
    if kind == "newest":
        return max(height - 1, 0)
    if kind == "specified":
        return int(position.specified.number)
    if kind == "next_commit":
        return height
    raise SeekError(InvalidArgument, f"unsupported seek position {kind}")


async def deliver(
    requests: AsyncIterator[common_pb2.Envelope],
    *,
    source_for: Callable[[str], DeliverSource],
    readers_policy: str,
    content: Content,
    now: Callable[[], dt.datetime],
    private_data: PrivateData = no_private_data,
) -> AsyncIterator[events_pb2.DeliverResponse]:
    """Answer every seek envelope of one stream; returns when the client closes it."""
    async for answer in _answers(
        requests, source_for=source_for, readers_policy=readers_policy, now=now
    ):
        if isinstance(answer, int):
            yield events_pb2.DeliverResponse(status=answer)
            continue
        seek, number, source = answer
        block = source.store.get_block(number)
        if content == "private":
            private = private_data(seek.channel_id, number, seek.requester_msp)
            yield _with_private_data(block, private)
        else:
            yield _response(block, seek.channel_id, content)


async def deliver_blocks(
    requests: AsyncIterator[common_pb2.Envelope],
    *,
    source_for: Callable[[str], DeliverSource],
    readers_policy: str,
    now: Callable[[], dt.datetime],
) -> AsyncIterator[bytes]:
    """`deliver(..., content="block")` with each answer already encoded: the bytes of a
    DeliverResponse (orderer's or peer's: fields 1 and 2 are the same) framed around the block
    as the store holds it. Parsing a stored block only to encode it again cost an ordering node
    two parses and two encodings per block per reader; the checks are `deliver`'s."""
    async for answer in _answers(
        requests, source_for=source_for, readers_policy=readers_policy, now=now
    ):
        if isinstance(answer, int):
            yield status_response(answer)
            continue
        _, number, source = answer
        block = source.store.get_block_bytes(number)
        yield b"".join((_RESPONSE_BLOCK, varint(len(block)), block))


def status_response(status: int) -> bytes:
    """A DeliverResponse holding only `status`, encoded."""
    return _RESPONSE_STATUS + varint(status)


async def _answers(
    requests: AsyncIterator[common_pb2.Envelope],
    *,
    source_for: Callable[[str], DeliverSource],
    readers_policy: str,
    now: Callable[[], dt.datetime],
) -> AsyncIterator[int | tuple[Seek, int, DeliverSource]]:
    """What one stream answers, in order: a status, or (seek, block number, source) for a block
    to send. A refused seek ends the stream after its status."""
    async for envelope in requests:
        try:
            seek = check_seek(
                envelope, source_for=source_for, readers_policy=readers_policy, now=now()
            )
        except SeekError as exc:
            log.info("deliver request refused", extra={"status": exc.status, "reason": exc.reason})
            yield exc.status
            return
        source = source_for(seek.channel_id)
        number = seek.start
        while seek.stop is None or number <= seek.stop:
            if number >= source.feed.height:
                if not seek.wait:
                    yield FABRIC_STATUSES[NotFound]
                    return
                if not await source.feed.wait_for_height(number + 1):
                    yield FABRIC_STATUSES[Unavailable]
                    return
            yield seek, number, source
            number += 1
        yield Status.SUCCESS


def _response(
    block: common_pb2.Block, channel_id: str, content: Content
) -> events_pb2.DeliverResponse:
    if content == "filtered":
        return events_pb2.DeliverResponse(filtered_block=filtered_block(block, channel_id))
    return events_pb2.DeliverResponse(block=block)


def _with_private_data(
    block: common_pb2.Block, private: Mapping[int, rwset_pb2.TxPvtReadWriteSet]
) -> events_pb2.DeliverResponse:
    answer = events_pb2.BlockAndPrivateData(block=block)
    for tx_num, pvt in private.items():
        answer.private_data_map[tx_num].CopyFrom(pvt)
    return events_pb2.DeliverResponse(block_and_private_data=answer)
