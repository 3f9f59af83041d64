"""How a node runs Python's cycle collector: settled once the node has started, and held off
while a peer commits a block.

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

# Python's default collects the youngest generation every 700 net container allocations; a
# busy node allocates that many in a handful of requests, whose objects reference counting
# frees anyway (issue 15: ≈ 3.5 % of a peer's CPU went to the collector).
YOUNG_COLLECTION_ALLOCATIONS = 20_000


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


def settle_collector() -> None:
    """Once the node has started: what start-up built (configuration, identities, contracts,
    caches' first entries, imported modules) lives as long as the process, so it is frozen out
    of the collector's traversals, and young collections run less often. Cycles that requests
    create are still collected, only in larger batches."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, middle, old)
