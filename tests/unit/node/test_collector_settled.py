"""A started node freezes what start-up built and collects young objects less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from medalliance.node.collector import YOUNG_COLLECTION_ALLOCATIONS, settle_collector


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_settling_freezes_what_lives_and_keeps_collecting_cycles() -> None:
    long_lived = [object() for _ in range(100)]
    gc.unfreeze()
    _, middle, old = gc.get_threshold()

    settle_collector()

    assert gc.get_freeze_count() >= len(long_lived)
    assert gc.get_threshold() == (YOUNG_COLLECTION_ALLOCATIONS, middle, old)

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after start: still garbage to the collector
    del a, b
    assert gc.collect() >= 2
