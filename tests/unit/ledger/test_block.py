"""Block hashing matches Fabric's test vectors; garbage never decodes into anything else."""

from __future__ import annotations

import contextlib
import hashlib

from fabric_protos.common import common_pb2
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import MalformedMessage
from medalliance.ledger.block import (
    header_bytes,
    header_hash,
    new_block,
    parse_block,
    verify_chain_link,
)


def test_header_hash_vectors() -> None:
    empty = hashlib.sha256(b"").digest()
    assert hashlib.sha256(header_bytes(0, b"", empty)).hexdigest() == (
        "9cae6f5c10756febc407bba95fc23853774c1f65f10354895bfdab6443d66ed3"
    )
    assert hashlib.sha256(header_bytes(1, b"\0" * 32, b"\0" * 32)).hexdigest() == (
        "b0d967854a8d63ec6cf69a76f73e5a7269dea8fbc2e7fe43a46133b04bd619bb"
    )
    assert header_bytes(128, b"", b"")[2:6] == bytes.fromhex("02020080")
    assert header_bytes(0, b"", empty)[:7].hex() == "30270201000400"


def test_chain_links_are_checked() -> None:
    first = new_block(0, b"", [b"genesis"])
    second = new_block(1, header_hash(first.header), [b"a", b"b"])
    assert verify_chain_link(first.header, second) is None
    second.data.data[0] = b"A"
    assert "data hash" in (verify_chain_link(first.header, second) or "")
    third = new_block(2, b"\0" * 32, [b"c"])
    assert "previous hash" in (verify_chain_link(second.header, third) or "")


def test_an_empty_block_still_has_data_and_five_metadata_slots() -> None:
    block = new_block(3, b"x", [])
    assert block.HasField("data")
    assert len(block.metadata.metadata) == 5


@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        assert isinstance(parse_block(data), common_pb2.Block)
