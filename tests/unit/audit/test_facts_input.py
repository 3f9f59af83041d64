"""Facts of blocks a careless or hostile source could hand over: nothing parsable, nothing out."""

from __future__ import annotations

import pytest
from fabric_protos.common import common_pb2

from medalliance.audit.facts import facts_of_block, iso_time
from medalliance.ledger.block import new_block, set_transactions_filter


@pytest.mark.parametrize(
    "envelope",
    [b"", b"\xff\xfe not a protobuf", common_pb2.Envelope(payload=b"\x0a\x03abc").SerializeToString()],
    ids=["an empty envelope gives no fact", "garbage bytes give no fact",
         "a payload without a readable header gives no fact"],
)  # fmt: skip
def test_unparsable_envelopes_give_no_facts(envelope: bytes) -> None:
    block = new_block(5, b"\x00" * 32, [envelope])
    set_transactions_filter(block, [0])
    assert facts_of_block(block, "alliance") == []


def test_a_block_without_a_transactions_filter_gives_no_facts() -> None:
    assert facts_of_block(new_block(1, b"\x00" * 32, [b"junk"]), "alliance") == []


def test_times_are_iso_utc_with_milliseconds() -> None:
    assert iso_time(1_764_720_000_123) == "2025-12-03T00:00:00.123Z"
