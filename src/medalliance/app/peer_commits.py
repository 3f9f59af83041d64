"""Waiting until every peer of a channel has committed a block.

A gateway's commit status says that the submitting organisation's peer committed the
transaction; the others commit the same block a little later, and on a loaded machine "a little"
can be seconds. The next step of a workflow is often another organisation's, whose gateway
endorses on its own peer first: without this wait that step reads state from before the
transaction (e.g. "application ... does not exist"). Heights come from each peer's operations
endpoint (`GET /status`), the figures `network status` shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.launcher import NodeInfo, nodes_of, probe

log = logging.getLogger(__name__)

# How long to wait for the other peers; a peer still behind then is left to its own
# pace (the transaction is committed: raising would invite a duplicate retry).
PEERS_DEADLINE_S = 30.0
STALL_S = 5.0  # a peer behind whose height has not moved for this long is stuck
POLL_S = 0.05


def wait_for_block(
    layout: NetworkLayout, channel: str, block: int, timeout_s: float = PEERS_DEADLINE_S
) -> list[str]:
    """Wait until every peer of the network that keeps up has committed block `block` of
    `channel` (see `wait_for_peers`); returns the peers given up on."""
    peers = [n for n in nodes_of(layout) if n.role == "peer"]
    return wait_for_peers(peers, channel, block, timeout_s=timeout_s)


def wait_for_peers(
    peers: Sequence[NodeInfo],
    channel: str,
    block: int,
    *,
    timeout_s: float = PEERS_DEADLINE_S,
    stall_s: float = STALL_S,
) -> list[str]:
    """Wait until each of `peers` has committed block `block` (its height, on its operations
    endpoint, is above it); returns the names of those given up on.

    Not waited for: a peer that does not answer (not running, or not reachable from here), one
    that does not report the channel (not joined), one that lacked an earlier block at the
    first look (already behind: e.g. its organisation was voted out and gets no more blocks),
    and, after `stall_s`, one whose height does not move (stuck). `timeout_s` bounds the rest.
    """
    moved = {n.name: (-1, time.monotonic()) for n in peers}
    waiting, first = list(peers), True
    deadline = time.monotonic() + timeout_s
    given_up: list[str] = []
    while waiting:
        behind = []
        for node in waiting:
            height = _height(node, channel)
            if height is None or height > block or (first and height < block):
                continue
            last, since = moved[node.name]
            if height != last:
                moved[node.name] = (height, time.monotonic())
            elif time.monotonic() - since >= stall_s:
                given_up.append(node.name)
                continue
            behind.append(node)
        waiting, first = behind, False
        if waiting and time.monotonic() >= deadline:
            given_up += [n.name for n in waiting]
            break
        if waiting:
            time.sleep(POLL_S)
    if given_up:
        log.warning("peers behind block %d of %s not waited for: %s", block, channel, given_up)
    return given_up


def _height(node: NodeInfo, channel: str) -> int | None:
    status = probe(node)
    channels = status.get("channels") if status is not None else None
    height = channels.get(channel) if isinstance(channels, dict) else None
    return height if isinstance(height, int) else None
