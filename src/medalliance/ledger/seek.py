"""Fabric's Deliver seek requests: where a block stream starts, and the signed envelope asking.

One builder for every client of a Deliver service: the SDK's block events and a node pulling
blocks from an ordering node (protocol doc §3.6).
"""

from __future__ import annotations

from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from medalliance.errors import InvalidArgument
from medalliance.ledger.tx import SigningIdentity

DELIVER_SEEK_INFO = common_pb2.HeaderType.Value("DELIVER_SEEK_INFO")
BLOCK_UNTIL_READY = ab_pb2.SeekInfo.SeekBehavior.Value("BLOCK_UNTIL_READY")
FAIL_IF_NOT_READY = ab_pb2.SeekInfo.SeekBehavior.Value("FAIL_IF_NOT_READY")
MAX_BLOCK_NUMBER = 2**53 - 1  # what Fabric's clients send as "no end"


def seek_position(start_block: int | None) -> ab_pb2.SeekPosition:
    """`specified` at `start_block`, or `next_commit` (only blocks not yet committed) for None.

    Raises `InvalidArgument` for a negative block number.
    """
    if start_block is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    if start_block < 0:
        raise InvalidArgument(f"a start block is a block number (0 or more), not {start_block}")
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))


def new_seek_envelope(
    signer: SigningIdentity,
    *,
    channel_id: str,
    start_block: int | None,
    timestamp_ms: int,
    tls_cert_hash: bytes = b"",
    behavior: int = BLOCK_UNTIL_READY,
    stop_block: int = MAX_BLOCK_NUMBER,
) -> common_pb2.Envelope:
    """The signed DELIVER_SEEK_INFO envelope that starts a block stream.

    It asks for every block from `start_block` (the next commit when None) with no end, waiting
    for blocks not yet cut (with `behavior=FAIL_IF_NOT_READY`, answered NOT_FOUND at once
    instead of waiting when `start_block` is not there yet), up to `stop_block`. `tls_cert_hash` is the SHA-256 of the client's TLS certificate
    (DER), which a server with mutual TLS compares with the connection's.
    """
    channel_header = common_pb2.ChannelHeader(
        type=DELIVER_SEEK_INFO,
        channel_id=channel_id,
        epoch=0,
        timestamp=Timestamp(seconds=timestamp_ms // 1000, nanos=(timestamp_ms % 1000) * 1_000_000),
        tls_cert_hash=tls_cert_hash,
    )
    signature_header = common_pb2.SignatureHeader(creator=signer.serialized_identity)
    seek_info = ab_pb2.SeekInfo(
        start=seek_position(start_block),
        stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=stop_block)),
        behavior=behavior,
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=seek_info.SerializeToString(),
    ).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=signer.sign(payload))
