"""Block hashing matches Fabric's test vectors; garbage never decodes into anything else."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from fabric_protos.common import common_pb2
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import MalformedMessage
from medalliance.ledger.block import (
    data_hash,
    envelope_tx_id,
    header_bytes,
    header_hash,
    new_block,
    parse_block,
    set_transactions_filter,
    transactions_filter,
    verify_chain_link,
)

EMPTY_SHA256 = hashlib.sha256(b"").digest()


@pytest.mark.parametrize(
    ("number", "previous", "data", "expected"),
    [
        pytest.param(
            0,
            b"",
            EMPTY_SHA256,
            "9cae6f5c10756febc407bba95fc23853774c1f65f10354895bfdab6443d66ed3",
            id="the genesis vector hashes as Fabric's",
        ),
        pytest.param(
            1,
            b"\0" * 32,
            b"\0" * 32,
            "b0d967854a8d63ec6cf69a76f73e5a7269dea8fbc2e7fe43a46133b04bd619bb",
            id="block one over zero hashes hashes as Fabric's",
        ),
    ],
)
def test_header_hash_matches_fabric_vectors(
    number: int, previous: bytes, data: bytes, expected: str
) -> None:
    assert hashlib.sha256(header_bytes(number, previous, data)).hexdigest() == expected
    header = common_pb2.BlockHeader(number=number, previous_hash=previous, data_hash=data)
    assert header_hash(header).hex() == expected


@pytest.mark.parametrize(
    ("number", "encoded"),
    [
        pytest.param(0, "020100", id="zero is one zero byte"),
        pytest.param(127, "02017f", id="127 fits one byte"),
        pytest.param(128, "02020080", id="128 gets a leading zero to stay positive"),
        pytest.param(255, "020200ff", id="255 gets a leading zero to stay positive"),
        pytest.param(256, "02020100", id="256 takes two bytes"),
        pytest.param(2**64 - 1, "020900" + "ff" * 8, id="the largest uint64 takes nine bytes"),
    ],
)
def test_integers_are_minimal_twos_complement(number: int, encoded: str) -> None:
    assert header_bytes(number, b"", b"")[2:].startswith(bytes.fromhex(encoded))


@pytest.mark.parametrize(
    ("previous_length", "sequence_prefix", "octets_prefix"),
    [
        pytest.param(200, "3081f0", "0481c8", id="lengths of 128 to 255 take one length byte"),
        pytest.param(300, "30820155", "0482012c", id="lengths from 256 take two length bytes"),
    ],
)
def test_long_hashes_use_long_form_lengths(
    previous_length: int, sequence_prefix: str, octets_prefix: str
) -> None:
    encoded = header_bytes(1, b"p" * previous_length, b"d" * 32)
    assert encoded.startswith(bytes.fromhex(sequence_prefix + "020101" + octets_prefix))
    assert encoded.endswith(b"\x04\x20" + b"d" * 32)


def test_negative_block_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        header_bytes(-1, b"", b"")


def test_data_hash_is_the_hash_of_the_plain_concatenation() -> None:
    assert data_hash([b"ab", b"c"]) == hashlib.sha256(b"abc").digest()
    assert data_hash([]) == EMPTY_SHA256


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
    assert block.header.data_hash == EMPTY_SHA256
    assert parse_block(block.SerializeToString()).HasField("data")


def test_the_transactions_filter_has_one_byte_per_transaction() -> None:
    block = new_block(1, b"x", [b"a", b"b", b"c"])
    assert transactions_filter(block) == b""
    set_transactions_filter(block, [0, 11, 254])
    assert transactions_filter(block) == bytes([0, 11, 254])
    assert block.metadata.metadata[2] == bytes([0, 11, 254])


def test_a_filter_can_be_set_on_a_block_without_metadata_slots() -> None:
    block = common_pb2.Block()
    set_transactions_filter(block, [0])
    assert len(block.metadata.metadata) == 5
    assert transactions_filter(block) == b"\x00"


def envelope(tx_id: str) -> bytes:
    channel_header = common_pb2.ChannelHeader(channel_id="alliance", tx_id=tx_id)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=channel_header.SerializeToString())
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


@pytest.mark.parametrize(
    ("data", "tx_id"),
    [
        pytest.param(envelope("abc123"), "abc123", id="a well formed envelope gives its tx id"),
        pytest.param(b"\xff\xff\xff", "", id="garbage has no tx id"),
        pytest.param(b"", "", id="an empty envelope has no tx id"),
        pytest.param(
            common_pb2.Envelope(payload=b"\x0a\x05junk").SerializeToString(),
            "",
            id="a payload that does not parse has no tx id",
        ),
    ],
)
def test_envelope_tx_ids_are_read_leniently(data: bytes, tx_id: str) -> None:
    assert envelope_tx_id(data) == tx_id


def test_garbage_is_a_malformed_block() -> None:
    with pytest.raises(MalformedMessage, match="malformed block"):
        parse_block(b"\xff\xff\xff\xff")


@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        assert isinstance(parse_block(data), common_pb2.Block)


@given(st.binary(max_size=300))
def test_random_envelopes_give_a_tx_id_or_nothing(data: bytes) -> None:
    assert isinstance(envelope_tx_id(data), str)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_integer_encoding_is_minimal(number: int) -> None:
    encoded = header_bytes(number, b"", b"")
    length = encoded[3]
    body = encoded[4 : 4 + length]
    assert int.from_bytes(body, "big") == number
    assert body[0] < 0x80  # positive
    assert len(body) == 1 or not (body[0] == 0 and body[1] < 0x80)  # no redundant leading zero
