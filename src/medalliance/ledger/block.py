"""Fabric's block format: header hash, data hash, metadata slots. Pure (protocol doc §5)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import MalformedMessage

TRANSACTIONS_FILTER = common_pb2.BlockMetadataIndex.Value("TRANSACTIONS_FILTER")
METADATA_SLOTS = 5


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_integer(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")  # minimal two's complement, non-negative
    return b"\x02" + _der_length(len(body)) + body


def _der_octets(data: bytes) -> bytes:
    return b"\x04" + _der_length(len(data)) + data


def header_bytes(number: int, previous_hash: bytes, data_hash: bytes) -> bytes:
    """DER of SEQUENCE{INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash}.

    Fabric hashes this, not the protobuf header: the exact bytes are part of the chain's format.
    """
    if number < 0:
        raise ValueError(f"block numbers are unsigned, got {number}")
    body = _der_integer(number) + _der_octets(previous_hash) + _der_octets(data_hash)
    return b"\x30" + _der_length(len(body)) + body


def header_hash(header: common_pb2.BlockHeader) -> bytes:
    """SHA-256 of the header's DER form: the `previous_hash` of the next block."""
    data = header_bytes(int(header.number), bytes(header.previous_hash), bytes(header.data_hash))
    return hashlib.sha256(data).digest()


def data_hash(envelopes: Sequence[bytes]) -> bytes:
    """SHA-256 of the envelopes concatenated as they are, without framing (Fabric's rule)."""
    digest = hashlib.sha256()
    for envelope in envelopes:  # not joined first: that would copy the whole block once more
        digest.update(envelope)
    return digest.digest()


def new_block(number: int, previous_hash: bytes, envelopes: Sequence[bytes]) -> common_pb2.Block:
    """A block with its header computed, `data` always present and five empty metadata slots."""
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = previous_hash
    block.header.data_hash = data_hash(envelopes)
    block.data.SetInParent()
    block.data.data.extend(envelopes)
    block.metadata.metadata.extend([b""] * METADATA_SLOTS)
    return block


def transactions_filter(block: common_pb2.Block) -> bytes:
    """The validation code of each transaction, one byte per tx; b"" before validation."""
    metadata = block.metadata.metadata
    return bytes(metadata[TRANSACTIONS_FILTER]) if len(metadata) > TRANSACTIONS_FILTER else b""


def set_transactions_filter(block: common_pb2.Block, codes: Sequence[int]) -> None:
    """Record one validation code (0..255) per transaction, adding missing metadata slots."""
    while len(block.metadata.metadata) < METADATA_SLOTS:
        block.metadata.metadata.append(b"")
    block.metadata.metadata[TRANSACTIONS_FILTER] = bytes(codes)


def verify_chain_link(previous: common_pb2.BlockHeader, block: common_pb2.Block) -> str | None:
    """None when `block` follows `previous` and its data hash is right; else what is wrong."""
    if bytes(block.header.previous_hash) != header_hash(previous):
        return (
            f"previous hash of block {block.header.number} does not match block {previous.number}"
        )
    if bytes(block.header.data_hash) != data_hash([bytes(d) for d in block.data.data]):
        return f"data hash of block {block.header.number} does not match its transactions"
    return None


def parse_block(data: bytes) -> common_pb2.Block:
    """Decode a block; raises `MalformedMessage` (never another error) for bytes that are not one."""
    block = common_pb2.Block()
    try:
        block.ParseFromString(data)
    except DecodeError as exc:
        raise MalformedMessage("block", str(exc)) from exc
    return block


def envelope_tx_id(envelope: bytes) -> str:
    """The tx id in an envelope's channel header, or "" when the envelope does not parse that far.

    Deliberately lenient: the block store indexes whatever id a stored envelope carries; judging
    the envelope is validation's job, and its verdict is in the transactions filter.
    """
    env, payload, channel_header = (
        common_pb2.Envelope(),
        common_pb2.Payload(),
        common_pb2.ChannelHeader(),
    )
    try:
        env.ParseFromString(envelope)
        payload.ParseFromString(env.payload)
        channel_header.ParseFromString(payload.header.channel_header)
    except DecodeError:
        return ""
    return str(channel_header.tx_id)
