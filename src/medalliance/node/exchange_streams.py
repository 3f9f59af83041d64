"""Request → answer exchanges on long-lived bidi calls to one node, one request in flight each.

Opening a call per request costs more than the work it carries (a grpc.aio unary call ≈ 360–470
µs of CPU over both ends, an exchange on an open stream ≈ 120–170 µs: `benchmarks/
protocol_floor.py`), so calls are kept open and reused: a peer's Broadcasts to an ordering node
(`broadcast_stream.py`) and its proposals to other organisations' peers (`endorsers.py`).

Each call carries one request at a time, and its reader hands each answer to the one caller
waiting on that call: an answer arriving while nobody waits (a node answering twice) breaks the
call, and a call whose answer is late or whose caller gave up is closed, never reused, so
answers cannot shift onto other requests. Concurrent callers use concurrent calls (as many as
are in flight; up to `IDLE_KEPT` stay open between bursts).

Why not one shared call with a FIFO of waiters: gRPC takes one write and one read at a time per
call, so a shared call's writes and answers each waited for the one before, a loop wake-up each;
on concurrent calls they complete together and are handled in batches.

Requests are written as the bytes given (no re-serialisation). A deadline is a timer that fails
the waiter and closes the call, not `asyncio.wait_for` (a second future and a callback hop per
request). A call that ends with an error status fails its waiter with `on_status(error)`
(`ConnectionError` unless the caller maps it otherwise); any other failure is a
`ConnectionError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

import grpc

# Calls kept open while idle, per node: the concurrency a gateway usually sees; a burst beyond
# it opens more, closed again once answered.
IDLE_KEPT = 64

Answer = TypeVar("Answer")
# opens a call that writes bytes as they are and reads decoded answers
Opener = Callable[[], grpc.aio.StreamStreamCall]
# the error a caller gets when its call ends with a gRPC error status
StatusMapper = Callable[[grpc.aio.AioRpcError], Exception]


def connection_error(error: grpc.aio.AioRpcError) -> Exception:
    return ConnectionError(error.details() or error.code().name)


class _Lane(Generic[Answer]):
    """One open call, its reader, and the caller waiting for an answer on it, if any."""

    __slots__ = ("call", "closed", "waiter")

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False

    async def read(self, node: str, on_status: StatusMapper) -> None:
        error: Exception = ConnectionError(f"{node} closed the stream")
        try:
            async for answer in self.call:
                waiter, self.waiter = self.waiter, None
                if waiter is None:
                    error = ConnectionError(f"{node} answered a request it was not sent")
                    break
                if not waiter.done():
                    waiter.set_result(answer)
        except grpc.aio.AioRpcError as exc:
            error = on_status(exc)
        except asyncio.CancelledError:  # the call was closed here, or the loop is stopping
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        finally:
            self.fail(error)

    def fail(self, error: Exception) -> None:
        """Close the call; its waiter, if any, gets `error`."""
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def close(self) -> None:
        """Close the call (its caller, if any, has its own error to raise)."""
        self.waiter = None
        self.closed = True
        self.call.cancel()


class ExchangeStreams(Generic[Answer]):
    """Sends requests to one node on reusable bidi calls. `send` raises `ConnectionError` when
    the answer does not come within `timeout` seconds or the call breaks, `on_status(error)`
    when the call ends with an error status; that call is then closed and the next `send` uses
    or opens another. `node` names the other end in error messages."""

    def __init__(
        self,
        open_call: Opener,
        timeout: float,
        node: str,
        on_status: StatusMapper = connection_error,
    ) -> None:
        self._open = open_call
        self._timeout = timeout
        self._node = node
        self._on_status = on_status
        self._idle: list[_Lane[Answer]] = []
        # the readers, referenced until they end
        self._readers: set[asyncio.Task[None]] = set()

    async def send(self, request: bytes) -> Answer:
        loop = asyncio.get_running_loop()
        lane = self._idle_lane()
        if lane is not None:
            try:
                return await self._exchange(loop, lane, request)
            except _NotSent:
                pass  # the node ended this idle call just now: the request goes on a new one
        return await self._exchange(loop, self._new_lane(loop), request)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, lane: _Lane[Answer], request: bytes
    ) -> Answer:
        answer: asyncio.Future[Answer] = loop.create_future()
        lane.waiter = answer
        late = ConnectionError(f"no answer within {self._timeout:g}s")
        timer = loop.call_at(loop.time() + self._timeout, lane.fail, late)
        try:
            try:
                await lane.call.write(request)
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
        except Exception:
            lane.close()
            raise
        finally:
            timer.cancel()
        if lane.closed or len(self._idle) >= IDLE_KEPT:
            lane.close()
        else:
            self._idle.append(lane)
        return response

    def _idle_lane(self) -> _Lane[Answer] | None:
        """The most recently used idle call still open, if any."""
        while self._idle:
            lane = self._idle.pop()
            if not lane.closed and not lane.call.done():
                return lane
            lane.close()
        return None

    def _new_lane(self, loop: asyncio.AbstractEventLoop) -> _Lane[Answer]:
        lane: _Lane[Answer] = _Lane(self._open())
        reader = loop.create_task(lane.read(self._node, self._on_status))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return lane


class _NotSent(ConnectionError):
    """The request could not be written: the call had ended."""
