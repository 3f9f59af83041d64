"""The sender's write watchdog (`consenter_streams.py`): one timer per stream instead of a
timeout around every write; a stalled write fails the send, a cancelled sender stays cancelled.
The streams themselves, against a real server: tests/integration/test_consenter_streams.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.node.test_bft_channel_supervision import until
from tests.unit.node.test_consenter_batches import run

from medalliance.node import consenter_streams
from medalliance.node.consenter_streams import Streams


class Call:
    """A client-streaming call whose writes are taken at once, or only once released."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.release: asyncio.Event | None = None  # set: writes wait for it
        self.take_s = 0.0  # how long each write takes to be taken
        self.cancelled = False

    async def write(self, data: bytes) -> None:
        if self.release is not None:
            await self.release.wait()
        if self.take_s:  # taken once a timer says so: the loop runs meanwhile
            taken = asyncio.Event()
            asyncio.get_running_loop().call_later(self.take_s, taken.set)
            await taken.wait()
        self.written.append(data)

    def done(self) -> bool:
        return self.cancelled

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class Link:
    """A gRPC channel whose every `stream_unary` opens the next `Call`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.stall = False
        self.take_s = 0.0

    def stream_unary(self, *_: Any, **__: Any) -> Any:
        def open_call() -> Call:
            call = Call()
            if self.stall:
                call.release = asyncio.Event()
            call.take_s = self.take_s
            self.calls.append(call)
            return call

        return open_call


def streams_over(
    monkeypatch: pytest.MonkeyPatch, timeout_s: float, *, stall: bool = False
) -> tuple[Link, Streams]:
    """Streams over a link whose writes time out after `timeout_s` (stalling: never taken)."""
    monkeypatch.setattr(consenter_streams, "WRITE_TIMEOUT_S", timeout_s)
    link = Link()
    link.stall = stall
    return link, Streams("svc", lambda _: link)


@run
async def test_writes_taken_in_time_arm_one_timer_per_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link, streams = streams_over(monkeypatch, 0.05)
    link.take_s = 0.01  # each write taken well within the timeout
    loop = asyncio.get_running_loop()
    started = loop.time()
    for sent in range(20):  # writes for four timeouts: none expires, the stream stays
        assert await streams.send("M", "o1", b"%d" % sent)
    assert loop.time() - started >= 0.2
    assert len(link.calls) == 1
    assert not link.calls[0].cancelled
    assert link.calls[0].written == [b"%d" % i for i in range(20)]
    stream = streams._streams["o1", "M"]
    await until(lambda: stream.watch is None, "the watchdog rests: no write pending")
    streams.close()


@run
async def test_a_stalled_write_fails_the_send_and_the_next_reopens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link, streams = streams_over(monkeypatch, 0.05, stall=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5.0):  # a deadline: without the watchdog the write never ends
        assert await streams.send("M", "o1", b"stalled") is False
    assert loop.time() - started >= 0.05
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the timeout left no cancel request behind
    assert link.calls[0].cancelled  # the stream was given up
    link.stall = False
    assert await streams.send("M", "o1", b"next")
    assert [c.written for c in link.calls] == [[], [b"next"]]
    streams.close()


@run
async def test_a_sender_cancelled_while_writing_stays_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link, streams = streams_over(monkeypatch, 60.0, stall=True)
    sending = asyncio.get_running_loop().create_task(streams.send("M", "o1", b"x"))
    await until(lambda: link.calls != [], "the write is pending")
    sending.cancel()  # the node stopping: not a write timeout, not a failed send
    with pytest.raises(asyncio.CancelledError):
        await sending
    streams.close()
    assert streams._streams["o1", "M"].watch is None
