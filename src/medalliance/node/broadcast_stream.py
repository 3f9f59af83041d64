"""One long-lived Broadcast call to an ordering node, shared by all of a peer's submissions.

An ordering node answers the envelopes of a stream in order, so answers are matched to a FIFO of
waiting futures. Opening a call per transaction costs more than ordering it.

Per envelope this costs what the protocol needs and little more: the submitter appends the
envelope's bytes (already checked by the gateway, written as they are: no parse, no
re-serialisation) and awaits one future, completed by the reader task. One writer task drains
the queue, since gRPC takes one write at a time on a call; submitters do not queue on a lock
for it, so a busy stream wakes each submitter once, for its answer. Deadlines are kept by one
timer per call rather than a timer and a wrapping future per envelope (`asyncio.wait_for`): as
every envelope waits the same time, the oldest unanswered envelope's deadline comes first.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import grpc
from fabric_protos.orderer import ab_pb2

BROADCAST_METHOD = "/orderer.AtomicBroadcast/Broadcast"

# opens a Broadcast call that writes bytes as they are and reads `BroadcastResponse`s
Opener = Callable[[], grpc.aio.StreamStreamCall]


def raw_broadcast(channel: grpc.aio.Channel) -> Opener:
    """Broadcast on `channel`, its requests written as the bytes given (no serializer)."""
    return channel.stream_stream(  # type: ignore[no-any-return]
        BROADCAST_METHOD,
        request_serializer=None,
        response_deserializer=ab_pb2.BroadcastResponse.FromString,
    )


@dataclass(eq=False)
class _Call:
    """One opened call: its envelopes not yet written, and the waiters in the order their
    envelopes were queued (each with its deadline, by the loop's clock)."""

    call: grpc.aio.StreamStreamCall
    outbox: collections.deque[bytes] = field(default_factory=collections.deque)
    waiters: collections.deque[tuple[asyncio.Future[ab_pb2.BroadcastResponse], float]] = field(
        default_factory=collections.deque
    )
    writing: bool = False
    timer: asyncio.TimerHandle | None = None
    broken: bool = False


class BroadcastStream:
    """Sends envelopes on one Broadcast call, opening it on first use and again after it
    breaks. A waiter gets `ConnectionError` when its envelope is not answered within
    `timeout` seconds of `send`, or when the call breaks before its answer."""

    def __init__(self, open_call: Opener, timeout: float) -> None:
        self._open = open_call
        self._timeout = timeout
        self._current: _Call | None = None
        # the reader and writer tasks, kept referenced so that they are not collected mid-call
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, envelope: bytes) -> ab_pb2.BroadcastResponse:
        loop = asyncio.get_running_loop()
        current = self._current
        if current is None:
            current = self._current = _Call(self._open())
            self._spawn(self._read(current))
        future: asyncio.Future[ab_pb2.BroadcastResponse] = loop.create_future()
        current.waiters.append((future, loop.time() + self._timeout))
        current.outbox.append(envelope)
        if not current.writing:
            current.writing = True
            self._spawn(self._write(current))
        if current.timer is None:
            current.timer = loop.call_at(current.waiters[0][1], self._expire, current)
        return await future

    def _spawn(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, current: _Call) -> None:
        try:
            while current.outbox and not current.broken:
                await current.call.write(current.outbox.popleft())
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            self._fail(current, f"cannot send: {exc}")
        finally:
            current.writing = False

    async def _read(self, current: _Call) -> None:
        reason = "the ordering node closed the stream"
        try:
            async for response in current.call:
                if not current.waiters:
                    reason = "the ordering node answered an envelope it was not sent"
                    break
                waiter, _ = current.waiters.popleft()  # one answer per envelope, in order
                if not waiter.done():  # a waiter that timed out still owns its answer
                    waiter.set_result(response)
        except grpc.aio.AioRpcError as exc:
            reason = exc.details() or exc.code().name
        finally:
            self._fail(current, reason)

    def _expire(self, current: _Call) -> None:
        """Fail the waiters whose deadline has passed (their envelopes keep their places:
        a late answer is still theirs), then wait for the next deadline."""
        current.timer = None
        now = asyncio.get_running_loop().time()
        for waiter, deadline in current.waiters:
            if deadline > now:
                current.timer = asyncio.get_running_loop().call_at(deadline, self._expire, current)
                return
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"no answer within {self._timeout:g}s"))

    def _fail(self, current: _Call, reason: str) -> None:
        current.call.cancel()
        if current.broken:  # its waiters were failed already
            return
        current.broken = True
        if self._current is current:
            self._current = None
        if current.timer is not None:
            current.timer.cancel()
            current.timer = None
        current.outbox.clear()
        while current.waiters:
            waiter, _ = current.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError(reason))
