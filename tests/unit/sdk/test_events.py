"""Event streams: unpacking responses, errors, and closing (protocol doc §3.5, §3.6)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2

from medalliance.errors import Conflict, NotFound, PermissionDenied
from medalliance.sdk import ChaincodeEvent, EventStream, GatewayError
from medalliance.sdk.events import (
    chaincode_events_of,
    deliver_requests,
    deliver_status_error,
    deliver_unpacker,
)


class FakeCall:
    """A response iterator as a grpc stream call returns it: also cancellable."""

    def __init__(self, responses: list[object], then: Exception | None = None) -> None:
        self._responses = iter(responses)
        self._then = then
        self.cancelled = False

    def __iter__(self) -> Iterator[object]:
        return self

    def __next__(self) -> object:
        if self.cancelled:
            raise FakeRpcError(grpc.StatusCode.CANCELLED)
        for response in self._responses:
            return response
        if self._then is not None:
            raise self._then
        raise StopIteration

    def cancel(self) -> None:
        self.cancelled = True


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"failed: {self._code.name}"

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ()


def events_response(block: int, *tx_ids: str) -> gateway_pb2.ChaincodeEventsResponse:
    return gateway_pb2.ChaincodeEventsResponse(
        block_number=block,
        events=[
            chaincode_event_pb2.ChaincodeEvent(
                chaincode_id="basic", tx_id=tx, event_name="Created", payload=tx.encode()
            )
            for tx in tx_ids
        ],
    )


def test_chaincode_events_come_in_order_with_their_block_number() -> None:
    stream = EventStream(
        FakeCall([events_response(3, "a", "b"), events_response(5, "c")]), chaincode_events_of
    )
    assert list(stream) == [
        ChaincodeEvent(3, "a", "basic", "Created", b"a"),
        ChaincodeEvent(3, "b", "basic", "Created", b"b"),
        ChaincodeEvent(5, "c", "basic", "Created", b"c"),
    ]


def test_an_event_payload_is_not_in_its_repr() -> None:
    assert "secret" not in repr(ChaincodeEvent(1, "t", "cc", "e", b"secret"))


def test_close_stops_iteration_and_cancels_the_call() -> None:
    call = FakeCall([events_response(1, "a", "b"), events_response(2, "c")])
    closed = threading.Event()
    with EventStream(call, chaincode_events_of, on_close=closed.set) as stream:
        assert next(stream).transaction_id == "a"
    assert call.cancelled
    assert closed.is_set()
    assert list(stream) == []  # buffered events are dropped once closed
    stream.close()  # idempotent


def test_a_failed_stream_raises_a_gateway_error_and_closes() -> None:
    call = FakeCall([events_response(1, "a")], then=FakeRpcError(grpc.StatusCode.PERMISSION_DENIED))
    stream = EventStream(call, chaincode_events_of)
    assert next(stream).transaction_id == "a"
    with pytest.raises(GatewayError) as caught:
        next(stream)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert isinstance(caught.value, PermissionDenied)
    assert call.cancelled


def test_a_cancellation_after_close_is_the_end_not_an_error() -> None:
    call = FakeCall([], then=FakeRpcError(grpc.StatusCode.CANCELLED))
    stream = EventStream(call, chaincode_events_of)
    call.cancel()
    stream.close()
    assert list(stream) == []


def test_a_deliver_stream_yields_the_asked_for_kind() -> None:
    block = common_pb2.Block(header=common_pb2.BlockHeader(number=4))
    filtered = events_pb2.FilteredBlock(channel_id="mychannel", number=4)
    assert deliver_unpacker("block")(events_pb2.DeliverResponse(block=block)) == [block]
    assert deliver_unpacker("filtered_block")(
        events_pb2.DeliverResponse(filtered_block=filtered)
    ) == [filtered]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param("NOT_FOUND", grpc.StatusCode.NOT_FOUND, id="a block past the height"),
        pytest.param("FORBIDDEN", grpc.StatusCode.PERMISSION_DENIED, id="not a reader"),
        pytest.param("BAD_REQUEST", grpc.StatusCode.INVALID_ARGUMENT, id="a stale timestamp"),
        pytest.param("SERVICE_UNAVAILABLE", grpc.StatusCode.UNAVAILABLE, id="shutting down"),
        pytest.param("SUCCESS", grpc.StatusCode.INTERNAL, id="even SUCCESS ends it early"),
    ],
)
def test_a_deliver_status_response_is_an_error(status: str, code: grpc.StatusCode) -> None:
    response = events_pb2.DeliverResponse(status=common_pb2.Status.Value(status))
    call = FakeCall([response, events_pb2.DeliverResponse(block=common_pb2.Block())])
    stream: EventStream[object] = EventStream(call, deliver_unpacker("block"))
    with pytest.raises(GatewayError, match=status) as caught:
        next(stream)
    assert caught.value.code == code
    assert call.cancelled


def test_a_deliver_status_names_its_category() -> None:
    assert isinstance(deliver_status_error(404), NotFound)
    assert not isinstance(deliver_status_error(500), Conflict)


def test_a_response_of_another_kind_is_an_error() -> None:
    response = events_pb2.DeliverResponse(block=common_pb2.Block())
    with pytest.raises(GatewayError, match="expected 'filtered_block'"):
        deliver_unpacker("filtered_block")(response)


def test_the_deliver_request_side_never_half_closes_until_closed() -> None:
    class RecordingEvent(threading.Event):
        waited = False

        def wait(self, timeout: float | None = None) -> bool:
            self.waited = True  # the request side would block here until the stream closes
            return True

    envelope = common_pb2.Envelope(payload=b"seek")
    closed = RecordingEvent()
    requests = deliver_requests(envelope, closed)
    assert next(requests) is envelope
    assert not closed.waited
    assert list(requests) == []
    assert closed.waited
