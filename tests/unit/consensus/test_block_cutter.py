"""The block cutter's rules: count, size and age cut a batch; nothing else does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.consensus.block_cutter import BlockCutter, Submitted, Tick


def tx(name: str, size: int = 1) -> Submitted:
    return Submitted(name, b"x" * size)


@pytest.mark.parametrize(
    ("events", "blocks"),
    [
        pytest.param([tx("a"), tx("b")], [("a", "b")], id="the count limit cuts"),
        pytest.param([tx("a"), Tick(5)], [("a",)], id="the timeout cuts"),
        pytest.param([Tick(9), tx("a"), Tick(13)], [], id="the clock starts at the oldest tx"),
        pytest.param([Tick(9)], [], id="no empty blocks"),
        pytest.param(
            [tx("a", 6), tx("b", 6)], [("a",)], id="a tx that would overflow starts the next batch"
        ),
        pytest.param([tx("big", 50)], [("big",)], id="a tx above the preferred size goes alone"),
        pytest.param(
            [tx("a", 4), tx("big", 50)],
            [("a",), ("big",)],
            id="a big tx cuts what waits, then itself",
        ),
    ],
)
def test_cutting_rules(events: list[Submitted | Tick], blocks: list[tuple[str, ...]]) -> None:
    cutter = BlockCutter(count_max=2, preferred_max_bytes=10, timeout_ticks=5)
    assert [cut.tx_ids for event in events for cut in cutter.step(event)] == blocks


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 12))))
def test_every_transaction_lands_once_in_order(arrivals: list[tuple[int, int]]) -> None:
    cutter = BlockCutter(count_max=3, preferred_max_bytes=20, timeout_ticks=5)
    now, cuts = 0, []
    for i, (gap, size) in enumerate(arrivals):
        now += gap
        cuts += cutter.step(Tick(now)) + cutter.step(tx(f"tx{i}", size))
    cuts += cutter.step(Tick(now + 5))
    assert [t for cut in cuts for t in cut.tx_ids] == [f"tx{i}" for i in range(len(arrivals))]
    assert all(len(cut.tx_ids) <= 3 for cut in cuts)
    assert all(len(c.tx_ids) == 1 or sum(map(len, c.envelopes)) <= 20 for c in cuts)
