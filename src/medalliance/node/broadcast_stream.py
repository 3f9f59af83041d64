"""Long-lived Broadcast calls to one ordering node, each carrying one envelope at a time.

Opening a Broadcast call per transaction (as Fabric's gateway does) costs more than ordering it,
so calls are kept open and reused, one envelope in flight per call (`exchange_streams.py`: how
answers reach their own submitter, deadlines, idle calls). `benchmarks/broadcast.py`, 64
senders, against the one shared call with a FIFO of waiters this replaced: ≈ 180 → ≈ 85 µs of
the peer's CPU per envelope, ≈ 165 → ≈ 75 µs of the ordering node's (8 senders: −40 %; one
sender: the same).

The envelope's bytes are written as they are (the gateway has parsed and checked them: no parse,
no re-serialisation).
"""

from __future__ import annotations

import grpc
from fabric_protos.orderer import ab_pb2

from medalliance.node.exchange_streams import IDLE_KEPT, ExchangeStreams, Opener

__all__ = ["BROADCAST_METHOD", "IDLE_KEPT", "BroadcastStream", "raw_broadcast"]

BROADCAST_METHOD = "/orderer.AtomicBroadcast/Broadcast"


def raw_broadcast(channel: grpc.aio.Channel) -> Opener:
    """Broadcast on `channel`, its requests written as the bytes given (no serializer)."""
    return channel.stream_stream(  # type: ignore[no-any-return]
        BROADCAST_METHOD,
        request_serializer=None,
        response_deserializer=ab_pb2.BroadcastResponse.FromString,
    )


class BroadcastStream(ExchangeStreams[ab_pb2.BroadcastResponse]):
    """Sends envelopes to one ordering node. `send` raises `ConnectionError` when the answer
    does not come within `timeout` seconds or the call breaks; that call is then closed and the
    next `send` uses or opens another."""

    def __init__(self, open_call: Opener, timeout: float) -> None:
        super().__init__(open_call, timeout, "the ordering node")
