"""A block's bytes assembled around its envelopes are exactly protobuf's encoding of it."""

from __future__ import annotations

from fabric_protos.common import common_pb2
from hypothesis import given
from hypothesis import strategies as st

from medalliance.ledger.block import new_block, set_transactions_filter
from medalliance.ledger.block_encoding import block_bytes, varint

envelopes = st.lists(st.binary(max_size=300), max_size=8)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_is_protobufs(n: int) -> None:
    block = common_pb2.Block()
    block.header.number = n
    # header = key 0x0a, length, then BlockHeader's field 1 (key 0x08) with the varint
    assert block.header.SerializeToString() == (b"\x08" + varint(n) if n else b"")


@given(st.integers(min_value=0, max_value=2**40), envelopes, st.binary(max_size=40))
def test_a_block_encodes_as_protobuf_does(number: int, data: list[bytes], codes: bytes) -> None:
    block = new_block(number, b"\x01" * 32, data)
    set_transactions_filter(block, list(codes[: len(data)]))
    assert block_bytes(block, data) == block.SerializeToString()


def test_absent_and_empty_parts_encode_as_protobuf_does() -> None:
    empty = common_pb2.Block()
    assert block_bytes(empty, []) == empty.SerializeToString() == b""
    present = common_pb2.Block()
    present.header.SetInParent()
    present.data.SetInParent()
    present.metadata.SetInParent()
    assert block_bytes(present, []) == present.SerializeToString() == b"\x0a\x00\x12\x00\x1a\x00"
    with_empty_envelope = new_block(3, b"", [b"", b"x"])
    assert block_bytes(with_empty_envelope, [b"", b"x"]) == with_empty_envelope.SerializeToString()


def test_fields_this_code_does_not_know_are_kept() -> None:
    """A block (or its data) carrying an unknown field is encoded by protobuf, which keeps it."""
    on_block = common_pb2.Block()
    on_block.ParseFromString(new_block(1, b"", [b"tx"]).SerializeToString() + b"\x20\x05")
    on_data = new_block(1, b"", [b"tx"])
    on_data.data.ParseFromString(on_data.data.SerializeToString() + b"\x10\x01")
    for block, unknown in ((on_block, b"\x20\x05"), (on_data, b"\x10\x01")):
        assert unknown in block.SerializeToString()
        assert block_bytes(block, [b"tx"]) == block.SerializeToString()


def test_envelopes_that_are_not_the_blocks_count_fall_back_to_protobuf() -> None:
    block = new_block(1, b"", [b"a", b"b"])
    assert block_bytes(block, [b"a"]) == block.SerializeToString()
