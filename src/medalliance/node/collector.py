"""Python's cycle collector held off while a peer commits a block.

Committing a block of 500 transactions allocates tens of thousands of container objects
(protobuf views, tuples, results) that live until the block is stored, almost none of them in
a reference cycle. The collector, triggered every 700 net allocations, ran ≈ 12 times per such
block and walked these survivors again in each older generation: 7–9 µs per transaction on the
shared machine (`benchmarks/validate_commit.py`, 46 collections, 14–18 ms over 2 000
transactions), for nothing to free. It is paused for the commit and runs as usual afterwards;
what a commit leaves in cycles (caught exceptions of invalid transactions) is collected then.
Memory does not grow beyond one block's objects, which reference counting frees.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cycle collector off for the block; re-enabled after it, even when the block is
    refused, unless it was already off (a caller that turned it off keeps it off). Threads of
    other channels may overlap: the collector is back on once the first of them ends, never
    left off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
