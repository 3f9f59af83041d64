"""Orderer signatures on blocks, in Fabric's SIGNATURES metadata layout (protocol doc §5).

Pure. A signer signs `value ‖ signature_header ‖ DER(block header)`, where `value` is the
serialized `OrdererBlockMetadata` (it names the last config block) and `signature_header` the
serialized `SignatureHeader{creator, nonce}`. The header hash does not cover metadata, so these
signatures are what bind a block to the ordering service; peers and auditors check them against
the channel's `/Channel/Orderer/BlockValidation` policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from medalliance.identity.policy import SignedData
from medalliance.ledger.block import header_bytes
from medalliance.ledger.tx import MalformedTransaction, SigningIdentity, parse_envelope

SIGNATURES = common_pb2.BlockMetadataIndex.Value("SIGNATURES")
BLOCK_VALIDATION_POLICY = "/Channel/Orderer/BlockValidation"


def signature_nonce(channel_id: str, number: int, creator: bytes) -> bytes:
    """A deterministic nonce, so that a re-signed block is byte-identical (replays, simulation)."""
    return hashlib.sha256(f"{channel_id}\x00{number}\x00".encode() + creator).digest()[:24]


def sign_block(
    block: common_pb2.Block,
    channel_id: str,
    signers: Sequence[SigningIdentity],
    *,
    last_config: int,
) -> None:
    """Write the SIGNATURES metadata of `block`, signed by each signer in order."""
    value = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=last_config)
    ).SerializeToString()
    header = _header_bytes(block)
    metadata = common_pb2.Metadata(value=value)
    for signer in signers:
        creator = signer.serialized_identity
        signature_header = common_pb2.SignatureHeader(
            creator=creator, nonce=signature_nonce(channel_id, int(block.header.number), creator)
        ).SerializeToString()
        metadata.signatures.add(
            signature_header=signature_header,
            signature=signer.sign(value + signature_header + header),
        )
    block.metadata.metadata[SIGNATURES] = metadata.SerializeToString()


def block_signatures(block: common_pb2.Block) -> list[SignedData]:
    """The orderer signatures of a block as policy input; raises `MalformedTransaction` if broken."""
    metadata = common_pb2.Metadata()
    try:
        metadata.ParseFromString(block.metadata.metadata[SIGNATURES])
    except (DecodeError, IndexError) as exc:
        raise MalformedTransaction(255, "block SIGNATURES metadata is malformed") from exc
    header = _header_bytes(block)
    signed = []
    for sig in metadata.signatures:
        sig_header = common_pb2.SignatureHeader()
        try:
            sig_header.ParseFromString(sig.signature_header)
        except DecodeError as exc:
            raise MalformedTransaction(255, "a block signature header is malformed") from exc
        signed.append(
            SignedData(
                data=bytes(metadata.value) + bytes(sig.signature_header) + header,
                identity=bytes(sig_header.creator),
                signature=bytes(sig.signature),
            )
        )
    return signed


def block_time(block: common_pb2.Block) -> dt.datetime:
    """When a block was made, as every node can compute it: its newest transaction's timestamp.

    Orderer certificates are judged at this time, so a ledger verified years later still
    verifies, and all peers agree. Raises `MalformedTransaction` if no envelope parses.
    """
    stamps = []
    for data in block.data.data:
        try:
            stamps.append(parse_envelope(bytes(data)).header.timestamp_ms)
        except MalformedTransaction:
            continue
    if not stamps:
        raise MalformedTransaction(2, f"block {block.header.number} has no readable transaction")
    return dt.datetime.fromtimestamp(max(stamps) / 1000, tz=dt.UTC)


def _header_bytes(block: common_pb2.Block) -> bytes:
    h = block.header
    return header_bytes(int(h.number), bytes(h.previous_hash), bytes(h.data_hash))
