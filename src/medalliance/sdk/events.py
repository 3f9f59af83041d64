"""Event streams: chaincode events from the Gateway service, blocks from the Deliver service.

An `EventStream` wraps one open gRPC stream. Iterating it blocks until the next event arrives;
the server never ends these streams, so the caller ends them with `close()` (or a `with`
block), after which iteration stops quietly. Any other failure ends the stream with a
`GatewayError`: reconnect with a new request, from a checkpoint (`sdk.checkpoint`).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, Self, TypeVar

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import events_pb2

from medalliance.sdk.errors import GatewayError, gateway_error

T = TypeVar("T")

# A Deliver `status` ends the stream; which gRPC code (and so error category) it stands for.
_DELIVER_STATUS_CODES = {
    "BAD_REQUEST": grpc.StatusCode.INVALID_ARGUMENT,
    "FORBIDDEN": grpc.StatusCode.PERMISSION_DENIED,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "REQUEST_ENTITY_TOO_LARGE": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "SERVICE_UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class ChaincodeEvent:
    """An event a contract emitted in a transaction that committed as VALID."""

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes = field(repr=False)


class EventStream(Generic[T]):
    """An open stream of events of type `T`; iterate it, then `close()` it.

    `close()` may be called from another thread to stop a blocked iteration.
    """

    def __init__(
        self,
        call: Iterator[object],
        unpack: Callable[[object], Iterable[T]],
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self._call = call  # a grpc response iterator, also a grpc.Call
        self._unpack = unpack
        self._on_close = on_close
        self._pending: collections.deque[T] = collections.deque()
        self._closed = threading.Event()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        """The next event; raises `GatewayError` when the stream fails, StopIteration once closed."""
        while not self._pending:
            if self._closed.is_set():
                raise StopIteration
            try:
                response = next(self._call)
                self._pending.extend(self._unpack(response))
            except StopIteration:
                self.close()
                raise
            except grpc.RpcError as exc:
                if self._closed.is_set():  # our own close() cancelled the call
                    raise StopIteration from None
                self.close()
                raise gateway_error(exc) from exc
            except GatewayError:
                self.close()
                raise
        return self._pending.popleft()

    def close(self) -> None:
        """Cancel the stream; idempotent. Events already received are dropped."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._pending.clear()
        cancel = getattr(self._call, "cancel", None)
        if cancel is not None:
            cancel()
        self._on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def chaincode_events_of(response: gateway_pb2.ChaincodeEventsResponse) -> list[ChaincodeEvent]:
    """The events of one ChaincodeEvents response (one block), in transaction order."""
    block_number = int(response.block_number)
    return [
        ChaincodeEvent(
            block_number=block_number,
            transaction_id=str(event.tx_id),
            chaincode_name=str(event.chaincode_id),
            event_name=str(event.event_name),
            payload=bytes(event.payload),
        )
        for event in response.events
    ]


def deliver_unpacker(kind: str) -> Callable[[events_pb2.DeliverResponse], list[object]]:
    """Reads the `kind` field ("block", "filtered_block", ...) of each Deliver response.

    Any `status` response is an error, even SUCCESS: the client asked for blocks without end,
    so the server stopping early means it refused (protocol doc §3.6).
    """

    def unpack(response: events_pb2.DeliverResponse) -> list[object]:
        received = response.WhichOneof("Type")
        if received == kind:
            return [getattr(response, kind)]
        if received == "status":
            raise deliver_status_error(int(response.status))
        raise GatewayError(
            grpc.StatusCode.INTERNAL, f"the deliver service sent {received!r}, expected {kind!r}"
        )

    return unpack


def deliver_status_error(status: int) -> GatewayError:
    """The error for a Deliver `status` response, with the matching gRPC code."""
    try:
        name = str(common_pb2.Status.Name(status))
    except ValueError:
        name = "UNKNOWN"
    code = _DELIVER_STATUS_CODES.get(name, grpc.StatusCode.INTERNAL)
    return GatewayError(
        code, f"unexpected status response from the deliver service: {status} ({name})"
    )


def deliver_requests(envelope: common_pb2.Envelope, closed: threading.Event) -> Iterator[object]:
    """The request side of a Deliver stream: the seek envelope, then silence until `closed`.

    Fabric's clients never half-close: a peer may treat the end of requests as the end of the
    call, so the iterator only returns once the stream is closed (protocol doc §3.6).
    """
    yield envelope
    closed.wait()
