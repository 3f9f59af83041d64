"""A block's protobuf bytes, built from envelope bytes the caller already holds. Pure.

`Block.SerializeToString()` of a 500-transaction block (≈ 2.5 MB) cost a committing peer ≈ 6 ms
per block, ≈ 12 µs per transaction: upb encodes into a growing buffer and then copies it out.
The block's envelopes are already in hand as bytes (the data hash was just computed over them),
so the record is assembled around them instead: the header and metadata, which are small, are
still encoded by protobuf; `Block` and `BlockData` are framed here, with the same field order
and encoding protobuf uses, so the bytes are identical (tests/unit/ledger/test_block_encoding.py).
A block or block data carrying fields this code does not know is left to protobuf, which keeps
them.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabric_protos.common import common_pb2
from google.protobuf.unknown_fields import UnknownFieldSet

# Field keys (field number << 3 | wire type 2, length-delimited) of Block and BlockData.
_BLOCK_HEADER, _BLOCK_DATA, _BLOCK_METADATA = b"\x0a", b"\x12", b"\x1a"
_DATA_ENTRY = b"\x0a"


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative integer."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def block_bytes(block: common_pb2.Block, envelopes: Sequence[bytes]) -> bytes:
    """`block.SerializeToString()`, given `envelopes` = the bytes of `block.data.data` in order."""
    if (
        len(envelopes) != len(block.data.data)
        or UnknownFieldSet(block)
        or UnknownFieldSet(block.data)
    ):
        return bytes(block.SerializeToString())
    parts: list[bytes] = []
    if block.HasField("header"):
        header = bytes(block.header.SerializeToString())
        parts += (_BLOCK_HEADER, varint(len(header)), header)
    if block.HasField("data"):
        framed: list[bytes] = []
        size = 0
        for envelope in envelopes:
            prefix = _DATA_ENTRY + varint(len(envelope))
            framed += (prefix, envelope)
            size += len(prefix) + len(envelope)
        parts += (_BLOCK_DATA, varint(size), *framed)
    if block.HasField("metadata"):
        metadata = bytes(block.metadata.SerializeToString())
        parts += (_BLOCK_METADATA, varint(len(metadata)), metadata)
    return b"".join(parts)
