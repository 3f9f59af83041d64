"""How far an organisation's own peer has committed: the height a reader of blocks stops at.

On the embedded alliance the peer is in this process and its ledger says; on a network of
processes the peer's operations endpoint says (`/status`, as `network status` reads it). The
audit index, the block explorer and the channel view all read blocks up to this height.
"""

from __future__ import annotations

from medalliance.app.alliance_network import AllianceNetwork, EmbeddedAlliance
from medalliance.errors import Unavailable
from medalliance.node import launcher

__all__ = ["peer_height"]


def peer_height(network: AllianceNetwork, msp_id: str) -> int:
    """The number of blocks the organisation's own peer holds on the network's channel.
    Raises `Unavailable` when its peer does not say (not running, or no peer)."""
    if isinstance(network, EmbeddedAlliance):
        for peer in network.network.peers_of(network.channel):
            if peer.msp_id == msp_id:
                return int(peer.channel(network.channel).height)
        raise Unavailable(f"{msp_id} runs no peer on channel {network.channel}")
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
