"""What clients learn from committed blocks, and how seek requests are checked and resolved."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2, transaction_pb2
from tests.conftest import make_org
from tests.integration.test_embedded_network import deliver_raw_block, endorsed_envelope

from medalliance.errors import UnknownChannel
from medalliance.ledger.block_events import chaincode_events, filtered_block
from medalliance.ledger.seek import new_seek_envelope
from medalliance.network.block_feed import BlockFeed
from medalliance.network.deliver import Seek, SeekError, check_seek, deliver, deliver_blocks
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.served import ServedChannel

PATIENT = "0123456789abcdef0123456789abcdef"
Status = common_pb2.Status
CODE = transaction_pb2.TxValidationCode


def commit_two_visits_one_conflicting(network: EmbeddedNetwork) -> common_pb2.Block:
    client = network.client("HospCMSP")
    # Two registrations of one visit number in one block: the second is an MVCC conflict.
    client.submit_async("alliance", "visit", "RegisterVisit", "V-1", PATIENT, "HospCMSP")
    client.submit_async("alliance", "visit", "RegisterVisit", "V-1", PATIENT[::-1], "HospCMSP")
    network.cut_blocks("alliance")
    ledger = network.peers_of("alliance")[0].channel("alliance")
    block = ledger.store.get_block(ledger.height - 1)
    assert len(block.data.data) == 2
    return block


def test_a_filtered_block_has_codes_and_event_names_but_no_payloads(
    network: EmbeddedNetwork,
) -> None:
    block = commit_two_visits_one_conflicting(network)
    filtered = filtered_block(block, "alliance")
    assert filtered.number == block.header.number
    codes = [t.tx_validation_code for t in filtered.filtered_transactions]
    assert codes == [CODE.Value("VALID"), CODE.Value("MVCC_READ_CONFLICT")]
    valid = filtered.filtered_transactions[0]
    (action,) = valid.transaction_actions.chaincode_actions
    assert action.chaincode_event.event_name == "VisitRegistered"
    assert action.chaincode_event.chaincode_id == "visit"
    assert action.chaincode_event.tx_id == valid.txid
    assert not action.chaincode_event.payload
    assert b"visitNo" not in filtered.SerializeToString()


def test_chaincode_events_come_from_valid_transactions_of_the_named_contract(
    network: EmbeddedNetwork,
) -> None:
    block = commit_two_visits_one_conflicting(network)
    (event,) = chaincode_events(block, "visit")
    assert event.event_name == "VisitRegistered"
    assert b'"visitNo":"V-1"' in event.payload
    assert chaincode_events(block, "other") == []


def seek(
    network: EmbeddedNetwork,
    start: ab_pb2.SeekPosition,
    stop: ab_pb2.SeekPosition,
    *,
    signer: object = None,
    channel: str = "alliance",
    now: dt.datetime | None = None,
) -> common_pb2.Envelope:
    who = signer or network.signer("HospCMSP")
    stamp = int((now or network.now()).timestamp() * 1000)
    envelope = new_seek_envelope(who, channel_id=channel, start_block=0, timestamp_ms=stamp)  # type: ignore[arg-type]
    payload = common_pb2.Payload.FromString(envelope.payload)
    info = ab_pb2.SeekInfo(start=start, stop=stop)
    payload.data = info.SerializeToString()
    data = payload.SerializeToString()
    return common_pb2.Envelope(payload=data, signature=who.sign(data))  # type: ignore[attr-defined]


def specified(n: int) -> ab_pb2.SeekPosition:
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=n))


NEWEST = ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
OLDEST = ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest())
NEXT = ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())


@pytest.fixture
def sources(network: EmbeddedNetwork) -> object:
    peer = network.peers_of("alliance")[0]
    served = ServedChannel(peer.channel("alliance"), BlockFeed(peer.channel("alliance").height))

    def source_for(channel_id: str) -> ServedChannel:
        if channel_id != "alliance":
            raise UnknownChannel(channel_id)
        return served

    return source_for


def check(network: EmbeddedNetwork, sources: object, envelope: common_pb2.Envelope) -> Seek:
    return check_seek(
        envelope,
        source_for=sources,  # type: ignore[arg-type]
        readers_policy="/Channel/Application/Readers",
        now=network.now(),
    )


def test_seek_positions_resolve_like_fabric(network: EmbeddedNetwork, sources: object) -> None:
    height = network.peers_of("alliance")[0].channel("alliance").height
    whole = check(network, sources, seek(network, OLDEST, NEWEST))
    assert (whole.start, whole.stop) == (0, height - 1)
    future = check(network, sources, seek(network, NEXT, specified(height + 5)))
    assert (future.start, future.stop) == (height, height + 5)
    waiting = check(network, sources, seek(network, specified(height), specified(height)))
    assert (waiting.start, waiting.wait) == (height, True)


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("beyond the height", Status.NOT_FOUND),
        ("stop before start", Status.BAD_REQUEST),
        ("unknown channel", Status.NOT_FOUND),
        ("stale timestamp", Status.BAD_REQUEST),
        ("foreign identity", Status.FORBIDDEN),
        ("tampered signature", Status.FORBIDDEN),
    ],
)
def test_bad_seeks_are_answered_with_fabric_statuses(
    network: EmbeddedNetwork, sources: object, case: str, status: int
) -> None:
    height = network.peers_of("alliance")[0].channel("alliance").height
    envelope = {
        "beyond the height": lambda: seek(network, specified(height + 1), NEWEST),
        "stop before start": lambda: seek(network, specified(1), specified(0)),
        "unknown channel": lambda: seek(network, OLDEST, NEWEST, channel="nochannel"),
        "stale timestamp": lambda: seek(
            network, OLDEST, NEWEST, now=network.now() - dt.timedelta(minutes=20)
        ),
        "foreign identity": lambda: seek(
            network, OLDEST, NEWEST, signer=make_org("HospCMSP").signer("Eve")
        ),
        "tampered signature": lambda: common_pb2.Envelope(
            payload=seek(network, OLDEST, NEWEST).payload, signature=b"\x30\x00"
        ),
    }[case]()
    with pytest.raises(SeekError) as refused:
        check(network, sources, envelope)
    assert refused.value.status == status


def answers(
    sources: object, network: EmbeddedNetwork, envelopes: list[common_pb2.Envelope]
) -> tuple[list[bytes], list[bytes]]:
    """What `deliver` (encoded by protobuf) and `deliver_blocks` answer one stream of seeks."""

    async def requests() -> AsyncIterator[common_pb2.Envelope]:
        for envelope in envelopes:
            yield envelope

    async def both() -> tuple[list[bytes], list[bytes]]:
        args = {"source_for": sources, "readers_policy": "/Channel/Readers", "now": network.now}
        encoded = [
            r.SerializeToString()
            async for r in deliver(requests(), content="block", **args)  # type: ignore[arg-type]
        ]
        framed = [r async for r in deliver_blocks(requests(), **args)]  # type: ignore[arg-type]
        return encoded, framed

    return asyncio.run(both())


def test_deliver_blocks_sends_the_bytes_protobuf_would(
    network: EmbeddedNetwork, sources: object
) -> None:
    """The ordering node's Deliver frames stored blocks itself: byte for byte protobuf's
    encoding of the same answers, for a whole ledger and a second seek on the same stream."""
    height = network.peers_of("alliance")[0].channel("alliance").height
    assert height > 1
    last = specified(height - 1)
    encoded, framed = answers(
        sources, network, [seek(network, OLDEST, NEWEST), seek(network, last, last)]
    )
    assert framed == encoded
    assert len(framed) == height + 1 + 1 + 1  # the ledger, SUCCESS, the last block, SUCCESS
    response = ab_pb2.DeliverResponse.FromString(framed[-2])
    assert response.block.header.number == height - 1
    assert ab_pb2.DeliverResponse.FromString(framed[-1]).status == Status.SUCCESS


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("a seek of a channel not served", Status.NOT_FOUND),
        ("an outsider", Status.FORBIDDEN),
        ("an unsigned seek", Status.FORBIDDEN),
        ("a replayed seek of yesterday", Status.BAD_REQUEST),
        ("a seek past the end", Status.NOT_FOUND),
    ],
)
def test_deliver_blocks_refuses_what_deliver_refuses_and_sends_nothing_else(
    network: EmbeddedNetwork, sources: object, case: str, status: int
) -> None:
    height = network.peers_of("alliance")[0].channel("alliance").height
    good = seek(network, OLDEST, NEWEST)
    envelope = {
        "a seek of a channel not served": lambda: seek(network, OLDEST, NEWEST, channel="other"),
        "an outsider": lambda: seek(
            network, OLDEST, NEWEST, signer=make_org("HospCMSP").signer("Eve")
        ),
        "an unsigned seek": lambda: common_pb2.Envelope(payload=good.payload),
        "a replayed seek of yesterday": lambda: seek(
            network, OLDEST, NEWEST, now=network.now() - dt.timedelta(days=1)
        ),
        "a seek past the end": lambda: seek(network, specified(height + 1), NEWEST),
    }[case]()
    # the refused seek ends the stream: the good one after it is never answered
    encoded, framed = answers(sources, network, [envelope, good])
    assert framed == encoded == [ab_pb2.DeliverResponse(status=status).SerializeToString()]


def test_deliver_blocks_without_waiting_stops_at_the_height(
    network: EmbeddedNetwork, sources: object
) -> None:
    """A seek that does not wait and reaches past the height gets the blocks there are and
    NOT_FOUND, as Fabric's FAIL_IF_NOT_READY."""
    height = network.peers_of("alliance")[0].channel("alliance").height
    envelope = seek(network, specified(height - 1), specified(height + 3))
    payload = common_pb2.Payload.FromString(envelope.payload)
    info = ab_pb2.SeekInfo.FromString(payload.data)
    info.behavior = ab_pb2.SeekInfo.FAIL_IF_NOT_READY
    payload.data = info.SerializeToString()
    data = payload.SerializeToString()
    signer = network.signer("HospCMSP")
    envelope = common_pb2.Envelope(payload=data, signature=signer.sign(data))
    encoded, framed = answers(sources, network, [envelope])
    assert framed == encoded
    assert len(framed) == 2
    assert ab_pb2.DeliverResponse.FromString(framed[-1]).status == Status.NOT_FOUND


def test_deliver_with_private_data_asks_for_the_requesters_organisation(
    network: EmbeddedNetwork, sources: object
) -> None:
    """Each block comes with what the peer's private data source gives the requester's MSP."""
    height = network.peers_of("alliance")[0].channel("alliance").height
    secret = rwset_pb2.TxPvtReadWriteSet()
    secret.ns_pvt_rwset.add(namespace="private").collection_pvt_rwset.add(collection_name="c")
    asked: list[tuple[str, int, str]] = []

    def private_data(channel: str, number: int, msp: str) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
        asked.append((channel, number, msp))
        return {0: secret} if msp == "HospAMSP" else {}

    async def stream(who: str) -> list[events_pb2.DeliverResponse]:
        async def requests() -> AsyncIterator[common_pb2.Envelope]:
            last = specified(height - 1)
            yield seek(network, last, last, signer=network.signer(who))

        return [
            response
            async for response in deliver(
                requests(),
                source_for=sources,  # type: ignore[arg-type]
                readers_policy="/Channel/Application/Readers",
                content="private",
                now=network.now,
                private_data=private_data,
            )
        ]

    member, other = asyncio.run(stream("HospAMSP")), asyncio.run(stream("HospBMSP"))
    assert asked == [("alliance", height - 1, "HospAMSP"), ("alliance", height - 1, "HospBMSP")]
    assert dict(member[0].block_and_private_data.private_data_map) == {0: secret}
    assert not other[0].block_and_private_data.private_data_map
    assert other[0].block_and_private_data.block.header.number == height - 1
    assert [r.status for r in (member[-1], other[-1])] == [Status.SUCCESS] * 2


def test_commit_status_waiters_get_the_location_the_block_store_indexes(
    network: EmbeddedNetwork,
) -> None:
    """CommitStatus answers from the feed's location without reading the index again: it
    must be the index's answer exactly, for a valid transaction, an invalid one, and a tx id
    replayed inside the block (its first occurrence)."""
    peer = network.peers_of("alliance")[0]
    ledger = peer.channel("alliance")
    served = ServedChannel.of(ledger)
    client = network.client("HospCMSP")

    async def scenario() -> None:
        valid, _ = client.submit_async("alliance", "visit", "RegisterVisit", "V-9", PATIENT, "HospCMSP")  # fmt: skip
        conflict, _ = client.submit_async("alliance", "visit", "RegisterVisit", "V-9", PATIENT[::-1], "HospCMSP")  # fmt: skip
        waiters = {tx_id: served.feed.tx_waiter(tx_id)[0] for tx_id in (valid, conflict)}
        network.cut_blocks("alliance")
        for tx_id, waiter in waiters.items():
            assert await asyncio.wait_for(waiter, 5) == ledger.store.tx_location(tx_id)
        assert waiters[conflict].result().validation_code == CODE.Value("MVCC_READ_CONFLICT")
        # A faulty ordering service puts a fresh transaction in a block twice: the waiter gets
        # the first (valid) occurrence, as the index keeps it, not the DUPLICATE_TXID replay.
        envelope, fresh = endorsed_envelope(network, "HospCMSP", "V-10")
        waiter, _ = served.feed.tx_waiter(fresh)
        assert deliver_raw_block(network, [envelope, envelope]) == [
            CODE.Value("VALID"),
            CODE.Value("DUPLICATE_TXID"),
        ]
        location = await asyncio.wait_for(waiter, 5)
        assert location == ledger.store.tx_location(fresh)
        assert (location.tx_num, location.validation_code) == (0, CODE.Value("VALID"))

    asyncio.run(scenario())
