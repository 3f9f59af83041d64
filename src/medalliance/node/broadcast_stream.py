"""Long-lived Broadcast calls to one ordering node, each carrying one envelope at a time.

Opening a Broadcast call per transaction (as Fabric's gateway does) costs more than ordering it,
so calls are kept open and reused. Each call carries one envelope at a time, and its reader
hands each answer to the one submitter waiting on that call: an answer arriving while nobody
waits (an ordering node answering twice) breaks the call, and a call whose answer is late or
whose submitter gave up is closed, never reused, so answers cannot shift onto other
transactions. Concurrent submitters use concurrent calls (as many as are in flight; up to
`IDLE_KEPT` stay open between bursts).

Why not one shared call with a FIFO of waiters (what this replaced): gRPC takes one write and
one read at a time per call, so a shared call's writes and answers each waited for the one
before, a loop wake-up each; on concurrent calls they complete together and are handled in
batches. `benchmarks/broadcast.py`, 64 senders: ≈ 180 → ≈ 85 µs of the peer's CPU per
envelope, ≈ 165 → ≈ 75 µs of the ordering node's (8 senders: −40 %; one sender: the same).

The envelope's bytes are written as they are (the gateway has parsed and checked them: no parse,
no re-serialisation). A deadline is a timer that fails the waiter and closes the call, not
`asyncio.wait_for` (a second future and a callback hop per envelope).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from fabric_protos.orderer import ab_pb2

BROADCAST_METHOD = "/orderer.AtomicBroadcast/Broadcast"
# Calls kept open while idle, per ordering node: the concurrency a gateway usually sees; a burst
# beyond it opens more, closed again once answered.
IDLE_KEPT = 64

# opens a Broadcast call that writes bytes as they are and reads `BroadcastResponse`s
Opener = Callable[[], grpc.aio.StreamStreamCall]


def raw_broadcast(channel: grpc.aio.Channel) -> Opener:
    """Broadcast on `channel`, its requests written as the bytes given (no serializer)."""
    return channel.stream_stream(  # type: ignore[no-any-return]
        BROADCAST_METHOD,
        request_serializer=None,
        response_deserializer=ab_pb2.BroadcastResponse.FromString,
    )


class _Lane:
    """One open call, its reader, and the submitter waiting for an answer on it, if any."""

    __slots__ = ("call", "closed", "waiter")

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        self.waiter: asyncio.Future[ab_pb2.BroadcastResponse] | None = None
        self.closed = False

    async def read(self) -> None:
        reason = "the ordering node closed the stream"
        try:
            async for response in self.call:
                waiter, self.waiter = self.waiter, None
                if waiter is None:
                    reason = "the ordering node answered an envelope it was not sent"
                    break
                if not waiter.done():
                    waiter.set_result(response)
        except grpc.aio.AioRpcError as exc:
            reason = exc.details() or exc.code().name
        except asyncio.CancelledError:  # the call was closed here, or the loop is stopping
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        finally:
            self.fail(ConnectionError(reason))

    def fail(self, error: ConnectionError) -> None:
        """Close the call; its waiter, if any, gets `error`."""
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def close(self) -> None:
        """Close the call (its submitter, if any, has its own error to raise)."""
        self.waiter = None
        self.closed = True
        self.call.cancel()


class BroadcastStream:
    """Sends envelopes to one ordering node on reusable Broadcast calls. `send` raises
    `ConnectionError` when the answer does not come within `timeout` seconds or the call
    breaks; that call is then closed and the next `send` uses or opens another."""

    def __init__(self, open_call: Opener, timeout: float) -> None:
        self._open = open_call
        self._timeout = timeout
        self._idle: list[_Lane] = []
        # the readers, referenced until they end
        self._readers: set[asyncio.Task[None]] = set()

    async def send(self, envelope: bytes) -> ab_pb2.BroadcastResponse:
        loop = asyncio.get_running_loop()
        lane = self._idle_lane()
        if lane is not None:
            try:
                return await self._exchange(loop, lane, envelope)
            except _NotSent:
                pass  # the node ended this idle call just now: the envelope goes on a new one
        return await self._exchange(loop, self._new_lane(loop), envelope)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, lane: _Lane, envelope: bytes
    ) -> ab_pb2.BroadcastResponse:
        answer: asyncio.Future[ab_pb2.BroadcastResponse] = loop.create_future()
        lane.waiter = answer
        late = ConnectionError(f"no answer within {self._timeout:g}s")
        timer = loop.call_at(loop.time() + self._timeout, lane.fail, late)
        try:
            try:
                await lane.call.write(envelope)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                lane.close()
                reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                raise _NotSent(f"cannot send: {reason}") from None
            response = await answer
        except asyncio.CancelledError:
            lane.close()  # its answer may still come: never reused
            task = asyncio.current_task()
            if answer.done() and not answer.cancelled() and not (task and task.cancelling()):
                raise late from None  # the deadline closed the call during the write
            raise
        except ConnectionError:
            lane.close()
            raise
        finally:
            timer.cancel()
        if lane.closed or len(self._idle) >= IDLE_KEPT:
            lane.close()
        else:
            self._idle.append(lane)
        return response

    def _idle_lane(self) -> _Lane | None:
        """The most recently used idle call still open, if any."""
        while self._idle:
            lane = self._idle.pop()
            if not lane.closed and not lane.call.done():
                return lane
            lane.close()
        return None

    def _new_lane(self, loop: asyncio.AbstractEventLoop) -> _Lane:
        lane = _Lane(self._open())
        reader = loop.create_task(lane.read())
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return lane


class _NotSent(ConnectionError):
    """The envelope could not be written: the call had ended."""
