"""Calls between ordering nodes as messages on long-lived streams (`Step`, `Forward`).

A unary gRPC call costs several times the CPU of one message on an open stream (call set-up,
headers, status and its completion on both ends; `benchmarks/protocol_floor.py`). An ordering
node therefore holds one client-streaming call per (target, method) on the target's cluster
port, opened lazily, and writes each batch of `consenter_batches.py` to it as one message:
the channel id, a NUL, then the batch body. Every channel shares the (target, method) stream:
the receiver checks the caller against the consenter set of each message's channel.

- **One in flight**: `send` returns once gRPC took the write. HTTP/2 flow control holds a
  write while the target has not read what came before, so `Batches` still has one batch in
  flight per queue and batching still grows with the load. Writes to one stream are
  serialised (gRPC allows one at a time).
- **Failures**: a write that fails, or is not taken within `WRITE_TIMEOUT_S` (a target that
  stopped reading: paused, or a dead link not yet noticed), cancels the stream and is a failed
  call (False, logged at debug); a stream that ended meanwhile (the target restarted, or
  refused a message) is re-opened before the next write, over the same gRPC channel, whose
  reconnect back-off applies. What is lost when a stream breaks — the batch being written and
  whatever gRPC had taken but the target had not yet handled — is covered exactly as a lost
  unary call was: a lost consensus message by the protocol's retransmission
  (docs/consensus.md), a lost forward by the admitting node, which keeps the transaction
  pending until it is ordered and proposes it itself when its turn comes.
- **The receiver's side** (`consenter_gate.py`): a stream without a client certificate (the
  client port) or from a certificate that is no consenter of any channel is refused before
  anything is read; each message is checked against its channel's consenter set in force when
  it is handled; a malformed message ends the stream with INVALID_ARGUMENT; a caller holds at
  most `STREAMS_PER_CALLER_MAX` open streams (RESOURCE_EXHAUSTED beyond). A message is bounded
  by the server's receive limit, and what is buffered by flow control.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 2.0  # a write not taken by then: the stream is cancelled, the batch lost
STREAMS_PER_CALLER_MAX = 8  # one per method is enough; the rest is room for re-opened ones


def _raw(data: bytes) -> bytes:
    return data


@dataclass
class _Stream:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    call: grpc.aio.StreamUnaryCall | None = None
    # The write watchdog: one timer per stream, re-armed only while a write is pending, in
    # place of a timeout (a timer scheduled and cancelled) around every write.
    writer: asyncio.Task[object] | None = None  # the task whose write is pending
    since: float = 0.0  # when that write began (loop time)
    watch: asyncio.TimerHandle | None = None
    expired: bool = False  # the watchdog cancelled the writer


class Streams:
    """The sender's streams: one client-streaming call per (target, method) of `service`.

    `link(target)` is the gRPC channel to the target's cluster port (mutual TLS)."""

    def __init__(self, service: str, link: Callable[[str], grpc.aio.Channel]) -> None:
        self._service = service
        self._link = link
        self._streams: dict[tuple[str, str], _Stream] = {}
        self.opened = 0  # streams opened, re-opened ones included

    async def send(self, method: str, target: str, message: bytes) -> bool:
        """Write one message on the (target, method) stream; False when it failed."""
        stream = self._streams.get((target, method))
        if stream is None:
            stream = self._streams[target, method] = _Stream()
        async with stream.lock:
            call = stream.call
            if call is None or call.done():
                call = stream.call = self._link(target).stream_unary(
                    f"/{self._service}/{method}",
                    request_serializer=_raw,
                    response_deserializer=_raw,
                )()
                self.opened += 1
            try:
                await self._write(stream, call, message)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError) as exc:
                call.cancel()
                stream.call = None
                reason = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "ended"
                if isinstance(exc, TimeoutError):
                    reason = "write timeout"
                log.debug("consensus peer unreachable", extra={"peer": target, "reason": reason})
                return False
        return True

    async def _write(self, stream: _Stream, call: grpc.aio.StreamUnaryCall, data: bytes) -> None:
        """`call.write`; TimeoutError once it waited `WRITE_TIMEOUT_S` (the watchdog cancels
        the writing task, as `asyncio.timeout` would, and this turns that into the timeout)."""
        loop = asyncio.get_running_loop()
        stream.writer, stream.since, stream.expired = asyncio.current_task(), loop.time(), False
        if stream.watch is None:
            stream.watch = loop.call_at(stream.since + WRITE_TIMEOUT_S, _watch, stream)
        try:
            await call.write(data)
        except asyncio.CancelledError:
            task = stream.writer
            if not stream.expired or task is None or task.uncancel() > 0:
                raise  # cancelled from elsewhere too (the node stopping): not a timeout
            raise TimeoutError from None
        finally:
            stream.writer = None

    def close(self) -> None:
        """Cancel every open stream (the node is stopping)."""
        for stream in self._streams.values():
            if stream.watch is not None:
                stream.watch.cancel()
                stream.watch = None
            if stream.call is not None:
                stream.call.cancel()
                stream.call = None


def _watch(stream: _Stream) -> None:
    """The watchdog's turn: cancel the writer whose write is overdue, re-arm for a pending
    write not yet due, or rest until the next write arms it again."""
    stream.watch = None
    if stream.writer is None:
        return
    loop = asyncio.get_running_loop()
    due = stream.since + WRITE_TIMEOUT_S
    if loop.time() >= due:
        stream.expired = True
        stream.writer.cancel()
    else:
        stream.watch = loop.call_at(due, _watch, stream)
