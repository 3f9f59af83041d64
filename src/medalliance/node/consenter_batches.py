"""Calls between ordering nodes (`Step`, `Forward`): binary batches, one call in flight per target.

An ordering node sends consensus messages (`Step`) to the channel's other consenters and
passes each transaction it admitted from a client on to them (`Forward`), so that whichever
of them proposes next can order it. One RPC per message or per transaction made the transport
cost grow with the load; here what is sent is queued per (target, channel) — one `Batches` per
method — and goes out as one call (since issue 15 a "call" is one message on the target's
long-lived stream, `consenter_streams.py`; it completes once gRPC took it):

- **When**: at most one call per queue is in flight. What is queued while none is goes out on
  the event loop's next turn (everything queued in the same turn rides along), so an idle node
  adds no latency; under load the queue fills while the previous call is on the wire and the
  next call carries all of it — batching grows with the load by itself, with no timer to tune.
  A target whose loop is busy (an fsync, a block) answers late, and could not have handled
  the messages earlier anyway.
- **How much**: a call carries at most `CALL_COUNT_MAX` items and about `CALL_BYTES` bytes
  (at least one item, however large: Broadcast admission and the consensus wire bound them).
- **Bounded**: a slow or dead consenter does not grow memory without bound. Beyond
  `QUEUE_COUNT_MAX` items or `QUEUE_BYTES_MAX` bytes queued for one target the oldest are
  dropped and counted (the oldest are the likeliest to be stale). Losing them is safe: a lost
  consensus message is covered by the protocol's retransmission (docs/consensus.md). A lost
  forward costs latency, not the transaction: it stays in the admitting node's `Pending` (the
  replica removes it only once ordered), whose round timers therefore keep running
  (`txs_available`) until the rounds reach that node as proposer and it proposes it itself.

- **Lingering items** (branch ord): an item pushed with `linger=True` (a forwarded
  transaction) does not start a call by itself at once: it waits up to `LINGER_S` for the
  next call to its target (a consensus message, which goes at once) or for the linger to end.
  Transactions are admitted one per loop turn, so without it every forward was a message of
  its own to every target; with it the forwards of a few milliseconds and the consensus
  messages of the moment go as one message. A forward only saves the next proposer's round
  trip (the admitting node proposes it itself otherwise), so a few milliseconds cost little.
  Items to go at once lead each call, and a full queue drops lingering items first: a flood
  of forwards neither delays nor drops a consensus message to the same target.

Body (after the channel id and a NUL): a 4-byte big-endian count, then per item a 4-byte
big-endian length and the bytes. `decode` is strict: count within `CALL_COUNT_MAX`, every
length non-zero and within the body, nothing left over, and, when the method's items carry a
kind (`KINDS`: the first byte says a consensus message or a forwarded transaction), a known
kind followed by at least one byte; anything else is `MalformedBatch`.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from medalliance.errors import InvalidArgument

CALL_COUNT_MAX = 1024  # items in one call (the receiver refuses more)
CALL_BYTES = 1 << 20  # a call is closed once it holds this many bytes
QUEUE_COUNT_MAX = 8192  # items queued for one target; beyond, the oldest are dropped
QUEUE_BYTES_MAX = 32 << 20  # bytes queued for one target; beyond, the oldest are dropped
LINGER_S = 0.02  # the longest a lingering item waits for a call to ride along with
STEP, FORWARD = b"S", b"F"  # an item's kind, its first byte, where the method mixes them
KINDS = STEP + FORWARD
MIXED = "Messages"  # the method whose items carry a kind (`Step` and `Forward` carry none)
_U32 = struct.Struct(">I")


class MalformedBatch(InvalidArgument):
    """A call body that is not a well-formed batch."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"malformed batch body: {problem}")


def encode(items: Sequence[bytes]) -> bytes:
    """The batch as `decode` reads it."""
    if not 1 <= len(items) <= CALL_COUNT_MAX:
        raise InvalidArgument(f"a batch carries 1..{CALL_COUNT_MAX} items")
    parts = [_U32.pack(len(items))]
    for item in items:
        if not item:
            raise InvalidArgument("a batch carries no empty item")
        parts += (_U32.pack(len(item)), item)
    return b"".join(parts)


def decode(body: bytes, kinds: bytes = b"") -> list[bytes]:
    """The items of a batch; `MalformedBatch` unless exactly well-formed. With `kinds`, each
    item must start with one of those bytes and carry at least one byte after it."""
    view = memoryview(body)
    if len(view) < _U32.size:
        raise MalformedBatch("shorter than its count")
    (count,) = _U32.unpack_from(view, 0)
    if not 1 <= count <= CALL_COUNT_MAX:
        raise MalformedBatch(f"count {count} outside 1..{CALL_COUNT_MAX}")
    if count * _U32.size > len(view) - _U32.size:
        raise MalformedBatch(f"count {count} does not fit {len(view)} bytes")
    items = []
    at = _U32.size
    for _ in range(count):
        if at + _U32.size > len(view):
            raise MalformedBatch("truncated before an item's length")
        (size,) = _U32.unpack_from(view, at)
        at += _U32.size
        if size == 0 or at + size > len(view):
            raise MalformedBatch(f"an item of {size} bytes does not fit the body")
        if kinds and (size < 2 or view[at] not in kinds):
            raise MalformedBatch(f"an item of {size} bytes without a known kind")
        items.append(bytes(view[at : at + size]))
        at += size
    if at != len(view):
        raise MalformedBatch(f"{len(view) - at} bytes after the last item")
    return items


Call = Callable[[str, str, bytes], Awaitable[bool]]  # (target, channel id, body) -> delivered


@dataclass
class _Queue:
    items: deque[bytes] = field(default_factory=deque)  # to go at once
    later: deque[bytes] = field(default_factory=deque)  # lingering items
    size: int = 0
    sending: bool = False
    lingering: asyncio.TimerHandle | None = None  # armed by a lingering item, no call yet

    def __len__(self) -> int:
        return len(self.items) + len(self.later)


class Batches:
    """Per (target, channel) queues of one method's items, flushed as batched calls.

    `call` performs one RPC and returns once it completed, False when it failed (the target's
    problem: counted, and it never holds up the other targets)."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped: Counter[str] = Counter()  # items dropped from a full queue, by target
        self.failed: Counter[str] = Counter()  # calls that failed, by target
        self.calls = 0  # calls made
        self.sent = 0  # items carried by them

    def queued(self, target: str) -> int:
        return sum(len(q) for (t, _), q in self._queues.items() if t == target)

    def status(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "items": self.sent,
            "dropped": dict(self.dropped),
            "failed": dict(self.failed),
        }

    def push(
        self,
        targets: Sequence[str],
        channel_id: str,
        items: Sequence[bytes],
        *,
        linger: bool = False,
    ) -> None:
        """Queue `items` for each target; a call goes out unless one is in flight, or, for
        lingering items, once `LINGER_S` passed unless another push started one before."""
        loop = asyncio.get_running_loop()
        for target in targets:
            queue = self._queues.setdefault((target, channel_id), _Queue())
            kept = queue.later if linger else queue.items
            for item in items:
                if not item:
                    continue  # nothing to carry (and a batch holds no empty item)
                kept.append(item)
                queue.size += len(item)
            while len(queue) > QUEUE_COUNT_MAX or queue.size > QUEUE_BYTES_MAX:
                # lingering items first: a flood of forwards drops no consensus message
                queue.size -= len((queue.later or queue.items).popleft())
                self.dropped[target] += 1
            if queue.sending or not queue:
                continue
            if not linger:
                self._start(target, channel_id, queue)
            elif queue.lingering is None:
                queue.lingering = loop.call_later(LINGER_S, self._start, target, channel_id, queue)

    def _start(self, target: str, channel_id: str, queue: _Queue) -> None:
        """A call on the loop's next turn (what is pushed meanwhile rides along)."""
        if queue.lingering is not None:
            queue.lingering.cancel()
            queue.lingering = None
        if queue.sending or not queue:
            return
        queue.sending = True
        task = asyncio.get_running_loop().create_task(self._drain(target, channel_id, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, target: str, channel_id: str, queue: _Queue) -> None:
        try:
            while queue:
                batch = _take(queue)
                self.calls += 1
                self.sent += len(batch)
                if not await self._call(target, channel_id, encode(batch)):
                    self.failed[target] += 1
        finally:
            queue.sending = False

    async def close(self) -> None:
        for queue in self._queues.values():
            if queue.lingering is not None:
                queue.lingering.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _take(queue: _Queue) -> list[bytes]:
    """The next call's items: those to go at once first, then lingering ones, within the
    bounds (at least one item)."""
    batch: list[bytes] = []
    size = 0
    for source in (queue.items, queue.later):
        while source and len(batch) < CALL_COUNT_MAX:
            following = len(source[0])
            if batch and size + following > CALL_BYTES:
                break
            batch.append(source.popleft())
            size += following
    queue.size -= size
    return batch
