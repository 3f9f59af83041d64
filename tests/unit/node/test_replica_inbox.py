"""The replica's inbox on a node: a flood of peers' messages is bounded, its own timers are not
refused and come first; equivocation evidence shows in /status without block bodies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.node.test_bft_channel_supervision import one_consenter_channel

from medalliance.consensus.messages import Kind, Vote
from medalliance.consensus.ready import Evidence
from medalliance.consensus.votes import Equivocation
from medalliance.node.replica_inbox import Inbox


def test_a_flood_is_refused_past_the_bound_and_own_timers_come_first() -> None:
    async def scenario() -> list[str]:
        inbox: Inbox[str] = Inbox(bound=2)
        assert inbox.offer("m1")
        assert inbox.offer("m2")
        assert not inbox.offer("m3")  # flood: refused, the caller counts it
        inbox.push("timer")  # never refused
        return [await inbox.get() for _ in range(3)]

    assert asyncio.run(scenario()) == ["timer", "m1", "m2"]


def test_equivocation_evidence_is_counted_and_reported(tmp_path: Path) -> None:
    channel, store = one_consenter_channel(tmp_path, lambda envelopes: None)
    try:
        first = Vote(Kind.PREVOTE, "ch", 1, 0, b"\1" * 32, "orderer1", b"sig1")
        second = Vote(Kind.PREVOTE, "ch", 1, 0, b"\2" * 32, "orderer1", b"sig2")
        channel.record_evidence(Evidence(Equivocation(first, second)))
        evidence = channel.status()["evidence"]
        assert evidence == {
            "count": 1,
            "latest": [
                {
                    "culprit": "orderer1",
                    "kind": "Vote",
                    "height": 1,
                    "round": 0,
                    "values": ["01" * 32, "02" * 32],
                }
            ],
        }
    finally:
        channel.close()
        store.close()
