"""Which block source a node asks next (node/orderer_link.py `switch_candidates`).

Sources 0..orderers-1 are ordering nodes, the rest peers. A peer has a block only after it has
committed it: a peer that preferred another peer to an ordering node could end up pulling from a
peer that pulls from it, and both would stall until the watchdog fired again.
"""

from __future__ import annotations

import asyncio

import pytest

from medalliance.node.orderer_link import delivered_within, switch_candidates


@pytest.mark.parametrize(
    ("source", "orderers", "sources", "expected"),
    [
        pytest.param(
            0, 4, 6, [1, 2, 3, 4, 5], id="from the first orderer: the other orderers, then peers"
        ),
        pytest.param(
            3, 4, 6, [0, 1, 2, 4, 5], id="from the last orderer: orderers before any peer"
        ),
        pytest.param(
            4, 4, 6, [0, 1, 2, 3, 5], id="from a peer: every orderer before the other peer"
        ),
        pytest.param(
            5, 4, 6, [0, 1, 2, 3, 4], id="from the last peer: orderers, then the first peer"
        ),
        pytest.param(0, 1, 1, [], id="a single orderer and no peers: nowhere else to ask"),
        pytest.param(1, 3, 3, [2, 0], id="an ordering node pulling from the others: no peers"),
    ],
)
def test_ordering_nodes_are_asked_before_any_peer(
    source: int, orderers: int, sources: int, expected: list[int]
) -> None:
    assert switch_candidates(source, orderers, sources) == expected


def test_a_block_on_its_way_within_the_grace_is_not_withholding() -> None:
    """Another node has block 5 a moment before our source sends it: no switch (the ~3 s
    stall after an idle spell); a source still silent after the grace is withholding."""

    async def scenario() -> tuple[bool, bool]:
        ledger = [5]  # the next block wanted

        def arrives() -> None:
            ledger[0] = 6

        asyncio.get_running_loop().call_later(0.05, arrives)
        on_its_way = await delivered_within(lambda: ledger[0], 5, grace_s=5.0)
        silent = await delivered_within(lambda: 6, 6, grace_s=0.1)
        return on_its_way, silent

    assert asyncio.run(scenario()) == (True, False)
