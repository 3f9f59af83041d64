"""`Forward` between ordering nodes: binary batches, one call in flight per consenter.

An ordering node passes each transaction it admitted from a client to the channel's other
consenters, so that whichever of them proposes next can order it. Sending one RPC per
transaction (or per replica step) to each consenter made the forwarding cost grow with the
load; here admitted envelopes are queued per (consenter, channel) and sent as one batch:

- **When**: at most one `Forward` call to a target is in flight. An envelope queued while none
  is goes out on the event loop's next turn (everything admitted in the same turn rides along),
  so an idle node adds no latency; under load the queue fills while the previous call is on
  the wire and the next call carries all of it — batching grows with the load by itself, with
  no timer to tune.
- **How much**: a call carries at most `CALL_COUNT_MAX` envelopes and about `CALL_BYTES` bytes
  (at least one envelope, however large: Broadcast admission already bounds its size).
- **Bounded**: a slow or dead consenter does not grow memory without bound. Beyond
  `QUEUE_COUNT_MAX` envelopes or `QUEUE_BYTES_MAX` bytes queued for one target the oldest are
  dropped and counted (the oldest are the likeliest to be ordered already). A lost forward
  costs latency, not the transaction: it stays in the admitting node's `Pending` (the replica
  removes it only once ordered), whose round timers therefore keep running (`txs_available`)
  until the rounds reach it as proposer and it proposes the transaction itself.

Body (after the channel id and a NUL, as `Step`): a 4-byte big-endian count, then per
envelope a 4-byte big-endian length and the bytes. `decode` is strict: count within
`CALL_COUNT_MAX`, every length within the body, nothing left over; anything else is
`MalformedForward`.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from medalliance.errors import InvalidArgument

CALL_COUNT_MAX = 1024  # envelopes in one Forward call (the receiver refuses more)
CALL_BYTES = 1 << 20  # a call is closed once it holds this many bytes
QUEUE_COUNT_MAX = 8192  # envelopes queued for one target; beyond, the oldest are dropped
QUEUE_BYTES_MAX = 32 << 20  # bytes queued for one target; beyond, the oldest are dropped
_U32 = struct.Struct(">I")


class MalformedForward(InvalidArgument):
    """A `Forward` body that is not a well-formed batch of envelopes."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"malformed Forward body: {problem}")


def encode(envelopes: Sequence[bytes]) -> bytes:
    """The batch as `decode` reads it."""
    if not 1 <= len(envelopes) <= CALL_COUNT_MAX:
        raise InvalidArgument(f"a Forward carries 1..{CALL_COUNT_MAX} envelopes")
    parts = [_U32.pack(len(envelopes))]
    for envelope in envelopes:
        parts += (_U32.pack(len(envelope)), envelope)
    return b"".join(parts)


def decode(body: bytes) -> list[bytes]:
    """The envelopes of a batch; `MalformedForward` unless exactly well-formed."""
    view = memoryview(body)
    if len(view) < _U32.size:
        raise MalformedForward("shorter than its count")
    (count,) = _U32.unpack_from(view, 0)
    if not 1 <= count <= CALL_COUNT_MAX:
        raise MalformedForward(f"count {count} outside 1..{CALL_COUNT_MAX}")
    if count * _U32.size > len(view) - _U32.size:
        raise MalformedForward(f"count {count} does not fit {len(view)} bytes")
    envelopes = []
    at = _U32.size
    for _ in range(count):
        if at + _U32.size > len(view):
            raise MalformedForward("truncated before an envelope's length")
        (size,) = _U32.unpack_from(view, at)
        at += _U32.size
        if size == 0 or at + size > len(view):
            raise MalformedForward(f"an envelope of {size} bytes does not fit the body")
        envelopes.append(bytes(view[at : at + size]))
        at += size
    if at != len(view):
        raise MalformedForward(f"{len(view) - at} bytes after the last envelope")
    return envelopes


Call = Callable[[str, str, bytes], Awaitable[bool]]  # (target, channel id, body) -> delivered


@dataclass
class _Queue:
    envelopes: deque[bytes] = field(default_factory=deque)
    size: int = 0
    sending: bool = False


class Forwarder:
    """Per (target, channel) queues of admitted envelopes, flushed as binary `Forward` calls.

    `call` performs one RPC and returns once it completed, False when it failed (the target's
    problem: counted, and it never holds up the other targets)."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped: Counter[str] = Counter()  # envelopes dropped from a full queue, by target
        self.failed: Counter[str] = Counter()  # calls that failed, by target
        self.calls = 0  # calls made
        self.sent = 0  # envelopes carried by them

    def queued(self, target: str) -> int:
        return sum(len(q.envelopes) for (t, _), q in self._queues.items() if t == target)

    def push(self, targets: Sequence[str], channel_id: str, envelopes: Sequence[bytes]) -> None:
        """Queue `envelopes` for each target; a call goes out unless one is in flight."""
        for target in targets:
            queue = self._queues.setdefault((target, channel_id), _Queue())
            for envelope in envelopes:
                queue.envelopes.append(envelope)
                queue.size += len(envelope)
            while len(queue.envelopes) > QUEUE_COUNT_MAX or queue.size > QUEUE_BYTES_MAX:
                queue.size -= len(queue.envelopes.popleft())
                self.dropped[target] += 1
            if not queue.sending and queue.envelopes:
                queue.sending = True
                task = asyncio.get_running_loop().create_task(
                    self._drain(target, channel_id, queue)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _drain(self, target: str, channel_id: str, queue: _Queue) -> None:
        try:
            while queue.envelopes:
                batch = _take(queue)
                self.calls += 1
                self.sent += len(batch)
                if not await self._call(target, channel_id, encode(batch)):
                    self.failed[target] += 1
        finally:
            queue.sending = False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _take(queue: _Queue) -> list[bytes]:
    batch = [queue.envelopes.popleft()]
    size = len(batch[0])
    while queue.envelopes and len(batch) < CALL_COUNT_MAX:
        following = len(queue.envelopes[0])
        if size + following > CALL_BYTES:
            break
        batch.append(queue.envelopes.popleft())
        size += following
    queue.size -= size
    return batch
