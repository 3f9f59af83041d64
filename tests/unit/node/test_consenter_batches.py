"""Calls between ordering nodes (`Step`, `Forward`, `Messages`): the binary batch body and the
per-target queues."""

from __future__ import annotations

import asyncio
import functools
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.unit.node.test_bft_channel_supervision import until

from medalliance.errors import InvalidArgument
from medalliance.node import consenter_batches
from medalliance.node.consenter_batches import (
    CALL_BYTES,
    CALL_COUNT_MAX,
    FORWARD,
    KINDS,
    QUEUE_COUNT_MAX,
    STEP,
    Batches,
    MalformedBatch,
    decode,
    encode,
)

# --- the body ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "envelopes",
    [
        pytest.param([b"a"], id="one byte"),
        pytest.param([b"\x00" * 5, b"\xff" * 300, b"tx"], id="several, binary"),
        pytest.param([b"%d" % i for i in range(CALL_COUNT_MAX)], id="the count bound"),
    ],
)
def test_a_batch_round_trips(envelopes: list[bytes]) -> None:
    assert decode(encode(envelopes)) == envelopes


def test_a_body_cut_anywhere_is_refused() -> None:
    body = encode([b"first envelope", b"second"])
    for end in range(len(body)):
        with pytest.raises(MalformedBatch):
            decode(body[:end])


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(b"", "shorter than its count", id="empty"),
        pytest.param(struct.pack(">I", 0), "count 0 outside", id="no envelope"),
        pytest.param(
            struct.pack(">I", CALL_COUNT_MAX + 1) + b"\x00" * 8 * CALL_COUNT_MAX,
            f"count {CALL_COUNT_MAX + 1} outside",
            id="over the count bound",
        ),
        pytest.param(b"\xff\xff\xff\xff", "count 4294967295 outside", id="a huge count"),
        pytest.param(struct.pack(">II", 3, 1) + b"a", "does not fit 9 bytes", id="count too big"),
        pytest.param(
            struct.pack(">II", 1, 1 << 30) + b"a", "does not fit the body", id="oversized length"
        ),
        pytest.param(struct.pack(">II", 1, 0), "an item of 0 bytes", id="empty envelope"),
        pytest.param(encode([b"tx"]) + b"!", "1 bytes after the last item", id="trailing bytes"),
        pytest.param(b'["bm90IGEgdHg="]', "outside", id="the former JSON body"),
    ],
)
def test_garbage_is_refused_with_a_clear_error(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedBatch, match="malformed batch body") as caught:
        decode(body)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        pytest.param(
            [STEP + b"vote", b"Xtx"], "an item of 3 bytes without a known kind", id="kind"
        ),
        pytest.param([FORWARD], "an item of 1 bytes without a known kind", id="kind alone"),
        pytest.param([b"\x00tx"], "without a known kind", id="a NUL kind"),
    ],
)
def test_a_mixed_batch_refuses_an_item_without_a_known_kind(
    items: list[bytes], problem: str
) -> None:
    body = encode(items)
    assert decode(body) == items  # a method without kinds takes them as they are
    with pytest.raises(MalformedBatch, match=problem):
        decode(body, KINDS)
    assert decode(encode([STEP + b"vote", FORWARD + b"tx"]), KINDS) == [b"Svote", b"Ftx"]


def test_the_sender_refuses_an_empty_or_oversized_batch() -> None:
    with pytest.raises(InvalidArgument):
        encode([])
    with pytest.raises(InvalidArgument):
        encode([b"x"] * (CALL_COUNT_MAX + 1))


# --- the queues ----------------------------------------------------------------------------------


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """The test on an event loop of its own."""

    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return sync


class Targets:
    """The other consenters as `Batches` sees them: each call recorded, some answering only
    when released, some failing."""

    def __init__(self, *, failing: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, str, list[bytes]]] = []
        self.failing = failing
        self.held: dict[str, asyncio.Event] = {}

    async def call(self, target: str, channel_id: str, body: bytes) -> bool:
        self.calls.append((target, channel_id, decode(body)))
        if target in self.held:
            await self.held[target].wait()
        return target not in self.failing

    def to(self, target: str) -> list[list[bytes]]:
        return [envelopes for t, _, envelopes in self.calls if t == target]


async def settled(batches: Batches) -> None:
    """Until no call is being sent (with a deadline: the test fails rather than hangs)."""
    await until(lambda: not batches._tasks, "no call is being sent")


@run
async def test_submits_of_one_turn_become_one_call_per_target() -> None:
    targets = Targets()
    batches = Batches(targets.call)
    for i in range(5):
        batches.push(["o1", "o2"], "ch", [b"tx%d" % i])
    await settled(batches)
    expected = [[b"tx%d" % i for i in range(5)]]
    assert (targets.to("o1"), targets.to("o2")) == (expected, expected)
    assert (batches.calls, batches.sent) == (2, 10)


@run
async def test_what_arrives_while_a_call_is_in_flight_goes_in_the_next_one() -> None:
    targets = Targets()
    targets.held["o1"] = asyncio.Event()
    batches = Batches(targets.call)
    batches.push(["o1"], "ch", [b"first"])
    await until(lambda: targets.to("o1") == [[b"first"]], "the first call is made")  # idle: at once
    for i in range(3):
        batches.push(["o1"], "ch", [b"later%d" % i])
    assert batches.queued("o1") == 3  # one call in flight per target: the rest wait for it
    assert len(targets.calls) == 1
    targets.held["o1"].set()
    await settled(batches)
    assert targets.to("o1") == [[b"first"], [b"later0", b"later1", b"later2"]]


@run
async def test_channels_are_separate_calls() -> None:
    targets = Targets()
    batches = Batches(targets.call)
    batches.push(["o1"], "a", [b"x"])
    batches.push(["o1"], "b", [b"y"])
    await settled(batches)
    assert sorted((c, e) for _, c, e in targets.calls) == [("a", [b"x"]), ("b", [b"y"])]


@run
async def test_a_call_is_closed_at_its_byte_bound() -> None:
    targets = Targets()
    batches = Batches(targets.call)
    big = b"x" * (CALL_BYTES // 2 + 1)
    batches.push(["o1"], "ch", [big, big, big])
    await settled(batches)
    assert [len(batch) for batch in targets.to("o1")] == [1, 1, 1]
    oversized = b"y" * (CALL_BYTES + 1)  # still sent, alone
    batches.push(["o1"], "ch", [oversized, b"z"])
    await settled(batches)
    assert targets.to("o1")[3:] == [[oversized], [b"z"]]


@run
async def test_a_failing_or_stuck_target_holds_up_nobody_else() -> None:
    targets = Targets(failing=frozenset({"dead"}))
    targets.held["stuck"] = asyncio.Event()
    batches = Batches(targets.call)
    batches.push(["dead", "stuck", "fine"], "ch", [b"one"])
    await until(lambda: len(targets.calls) == 3 and batches.failed["dead"] == 1, "first calls")
    batches.push(["dead", "stuck", "fine"], "ch", [b"two"])
    await until(lambda: batches.failed["dead"] == 2, "the dead target's second call failed")
    await until(lambda: len(targets.to("fine")) == 2, "the fine target's second call")
    assert targets.to("fine") == [[b"one"], [b"two"]]
    assert targets.to("dead") == [[b"one"], [b"two"]]  # each failure counted, the next sent
    assert batches.failed["dead"] == 2
    assert targets.to("stuck") == [[b"one"]]
    assert batches.queued("stuck") == 1
    targets.held["stuck"].set()
    await settled(batches)
    assert targets.to("stuck") == [[b"one"], [b"two"]]


@run
async def test_a_dead_targets_queue_is_bounded_and_drops_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = Targets()
    targets.held["slow"] = asyncio.Event()
    batches = Batches(targets.call)
    batches.push(["slow"], "ch", [b"in flight"])
    await until(lambda: targets.to("slow") == [[b"in flight"]], "the first call is in flight")
    flood = [b"tx%d" % i for i in range(QUEUE_COUNT_MAX + 100)]
    batches.push(["slow"], "ch", flood)
    assert batches.queued("slow") == QUEUE_COUNT_MAX
    assert batches.dropped["slow"] == 100
    monkeypatch.setattr(consenter_batches, "QUEUE_BYTES_MAX", 1000)
    batches.push(["slow"], "ch", [b"b" * 600, b"c" * 600])
    assert batches.queued("slow") == 1  # by bytes too: only the newest fits
    targets.held["slow"].set()
    await settled(batches)
    assert targets.to("slow")[-1] == [b"c" * 600]


def lingering(monkeypatch: pytest.MonkeyPatch, seconds: float) -> tuple[Targets, Batches]:
    """Batches whose lingering items wait `seconds`, and the targets recording their calls."""
    monkeypatch.setattr(consenter_batches, "LINGER_S", seconds)
    targets = Targets()
    return targets, Batches(targets.call)


@run
async def test_a_lingering_item_rides_along_with_the_next_call_to_its_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets, batches = lingering(monkeypatch, 60.0)  # only the other push sends it
    batches.push(["o1", "o2"], "ch", [b"Ftx1"], linger=True)
    batches.push(["o1"], "ch", [b"Ftx2"], linger=True)
    batches.push(["o3"], "ch", [b"Sother"])  # goes at once: once it went, the loop has turned
    await until(lambda: targets.to("o3") != [], "the other target's consensus message")
    assert targets.to("o1") == targets.to("o2") == []  # lingering: no call of their own yet
    assert batches.queued("o1") == 2
    batches.push(["o1"], "ch", [b"Svote"])  # a consensus message goes at once, with them
    await settled(batches)
    assert targets.to("o1") == [[b"Svote", b"Ftx1", b"Ftx2"]]  # consensus messages first
    assert targets.to("o2") == []  # still lingering there: its own target got no message
    await batches.close()
    assert batches.queued("o2") == 1


@run
async def test_a_lingering_item_goes_alone_once_the_linger_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets, batches = lingering(monkeypatch, 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    batches.push(["o1"], "ch", [b"Ftx1"], linger=True)
    batches.push(["o1"], "ch", [b"Ftx2"], linger=True)  # the first one's timer, not a second
    await until(lambda: targets.calls != [], "the lingering call")
    assert loop.time() - started >= 0.05
    await settled(batches)
    assert targets.to("o1") == [[b"Ftx1", b"Ftx2"]]
    assert batches.calls == 1


@run
async def test_a_flood_of_lingering_items_is_bounded_and_drops_no_consensus_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets, batches = lingering(monkeypatch, 60.0)
    targets.held["o1"] = asyncio.Event()
    batches.push(["o1"], "ch", [b"Sfirst"])
    await until(lambda: targets.to("o1") == [[b"Sfirst"]], "the first call is in flight")
    batches.push(["o1"], "ch", [b"Svote"])
    flood = [b"F%d" % i for i in range(QUEUE_COUNT_MAX + 7)]
    batches.push(["o1"], "ch", flood, linger=True)
    # the vote holds its place: the oldest forwards make room, 8 of them (7 + the vote's)
    assert (batches.queued("o1"), batches.dropped["o1"]) == (QUEUE_COUNT_MAX, 8)
    targets.held["o1"].set()
    await settled(batches)
    sent = [item for batch in targets.to("o1")[1:] for item in batch]
    assert sent[:2] == [b"Svote", b"F8"]  # at the head of the next call
    assert (len(sent), sent[-1]) == (QUEUE_COUNT_MAX, b"F%d" % (QUEUE_COUNT_MAX + 6))
