"""The ordering node's mempool: Fabric's block-cutting rules at its head, updates alone."""

from __future__ import annotations

import time

from fabric_protos.common import common_pb2

from medalliance.ledger.config_update import CONFIG_UPDATE
from medalliance.ledger.tx import ENDORSER_TRANSACTION
from medalliance.node.mempool import Mempool


def envelope(n: int, *, kind: int = ENDORSER_TRANSACTION, size: int = 10) -> bytes:
    header = common_pb2.ChannelHeader(type=kind, channel_id="ch", tx_id=f"tx{n}")
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()),
        data=b"x" * size,
    )
    return common_pb2.Envelope(
        payload=payload.SerializeToString(), signature=b"s"
    ).SerializeToString()


def pool(*envelopes: bytes) -> Mempool:
    mempool = Mempool()
    for n, e in enumerate(envelopes):
        mempool.add(f"tx{n}", e)
    return mempool


def test_a_young_partial_batch_waits_and_an_old_one_goes() -> None:
    mempool = pool(envelope(0), envelope(1))
    rules = {"max_count": 10, "preferred_bytes": 10_000, "timeout_ms": 200}
    assert mempool.batch(**rules) is None
    batch = mempool.batch(**rules, now=time.monotonic() + 0.3)
    assert batch is not None
    assert (len(batch.envelopes), batch.config_update) == (2, None)


def test_a_full_batch_goes_at_once_by_count_or_by_bytes() -> None:
    mempool = pool(*(envelope(n) for n in range(5)))
    by_count = mempool.batch(max_count=3, preferred_bytes=10_000, timeout_ms=10_000)
    assert by_count is not None
    assert len(by_count.envelopes) == 3
    size = len(envelope(0))
    by_bytes = mempool.batch(max_count=10, preferred_bytes=2 * size, timeout_ms=10_000)
    assert by_bytes is not None
    assert len(by_bytes.envelopes) == 2


def test_one_transaction_above_the_preferred_size_goes_alone() -> None:
    mempool = pool(envelope(0, size=5_000), envelope(1))
    batch = mempool.batch(max_count=10, preferred_bytes=100, timeout_ms=10_000)
    assert batch is not None
    assert len(batch.envelopes) == 1


def test_a_config_update_goes_alone() -> None:
    update = envelope(1, kind=CONFIG_UPDATE)
    mempool = pool(envelope(0), update, envelope(2))
    first = mempool.batch(max_count=10, preferred_bytes=10_000, timeout_ms=0)
    assert first is not None
    assert first.envelopes == (envelope(0),)
    mempool.remove(["tx0"])
    second = mempool.batch(max_count=10, preferred_bytes=10_000, timeout_ms=10_000)
    assert second is not None
    assert (second.envelopes, second.config_update) == ((update,), "tx1")


def test_decided_transactions_leave_and_are_no_longer_known_as_verified() -> None:
    mempool = pool(envelope(0), envelope(1))
    assert mempool.verified(envelope(0))
    mempool.remove(["tx0", "tx9"])
    assert ("tx0" in mempool, "tx1" in mempool, len(mempool)) == (False, True, 1)
    assert not mempool.verified(envelope(0))
