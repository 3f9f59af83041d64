"""How far an organisation's own peer has committed: the height a reader of blocks stops at;
and reaching the in-process nodes of the embedded demo.

On the embedded alliance the peer is in this process and its ledger says; on a network of
processes the peer's operations endpoint says (`/status`, as `network status` reads it). The
audit index, the block explorer and the channel view all read blocks up to this height.

The web backend wraps the alliance (web/backend.py `ConfinedAlliance`: every call on one
thread, since the embedded network's SQLite connections are bound to it); `embedded_of` sees
through the wrapper and `on_alliance_thread` runs a direct read of an in-process node there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from medalliance.app.alliance_network import AllianceNetwork, EmbeddedAlliance
from medalliance.errors import Unavailable
from medalliance.node import launcher

__all__ = ["embedded_of", "on_alliance_thread", "peer_height"]

T = TypeVar("T")


def embedded_of(network: AllianceNetwork) -> EmbeddedAlliance | None:
    """The embedded alliance behind `network` (None over a network of processes)."""
    inner = getattr(network, "inner", network)
    return inner if isinstance(inner, EmbeddedAlliance) else None


def on_alliance_thread(network: AllianceNetwork, read: Callable[[], T]) -> T:
    """`read()` on the thread the alliance's calls run on (directly when it has none)."""
    run: Callable[[Callable[[], T]], T] | None = getattr(network, "run", None)
    return run(read) if run is not None else read()


def peer_height(network: AllianceNetwork, msp_id: str) -> int:
    """The number of blocks the organisation's own peer holds on the network's channel.
    Raises `Unavailable` when its peer does not say (not running, or no peer)."""
    embedded = embedded_of(network)
    if embedded is not None:
        peers = [p for p in embedded.network.peers_of(embedded.channel) if p.msp_id == msp_id]
        if not peers:
            raise Unavailable(f"{msp_id} runs no peer on channel {embedded.channel}")
        ledger = peers[0].channel(embedded.channel)
        return on_alliance_thread(network, lambda: int(ledger.height))
    for node in launcher.nodes_of(network.layout):
        if node.organization == msp_id and node.role == "peer":
            answer = launcher.probe(node, timeout=2.0)
            height = (answer or {}).get("channels", {}).get(network.channel)
            if isinstance(height, int):
                return height
    raise Unavailable(
        f"the peer of {msp_id} does not report its height on channel {network.channel}; is it "
        "running (`medalliance network status`)?"
    )
