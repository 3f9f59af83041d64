"""What a peer process tells its discovery service: the network's peers and their heights.

Which peers exist comes from the network config (each organisation's peers, `host:port` as
there: the addresses clients dial, as Fabric's external endpoints); their identities from the
network folder's crypto material when this machine holds it (an organisation set up elsewhere
shows its MSP id only); heights from this peer's own ledgers and, for the others, from
`PeerHeights` (their operations endpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from medalliance.gateway.discovery import ChannelKnowledge, KnownPeer, PeerKnowledge
from medalliance.identity.msp import Msp, MspManager
from medalliance.identity.signing import serialize_identity
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.peer_heights import HeightSource, PeerHeights


class DiscoveryView:
    """Builds a `PeerKnowledge` for each discovery request of the peer `host`."""

    def __init__(
        self,
        layout: NetworkLayout,
        host: str,
        msp_id: str,
        own_heights: Callable[[], Mapping[str, int]],
        channel: Callable[[str], ChannelKnowledge | None],
    ) -> None:
        self._own_host = host
        self._own_heights = own_heights
        self._channel = channel
        config = layout.config
        # (host, msp id, endpoint, serialized identity) of every peer, in config order
        self._peers = [
            (f"{n.name}.{o.domain}", o.msp_id, n.endpoint, _identity(layout, o.msp_id, n.name))
            for o in config.organizations
            for n in o.peers
        ]
        self.heights = PeerHeights(
            [
                HeightSource(f"{n.name}.{o.domain}", n.operations_endpoint)
                for o in config.organizations
                for n in o.peers
                if f"{n.name}.{o.domain}" != host
            ]
        )
        self._local_msps = MspManager([Msp.from_dir(layout.org_msp_dir(msp_id), msp_id)])

    async def knowledge(self) -> PeerKnowledge:
        await self.heights.refresh()
        peers = tuple(
            KnownPeer(
                msp_id=msp_id,
                endpoint=endpoint,
                identity=identity,
                heights=self._own_heights() if host == self._own_host else self.heights.of(host),
            )
            for host, msp_id, endpoint, identity in self._peers
        )
        return PeerKnowledge(channel=self._channel, peers=peers, local_msps=self._local_msps)


def _identity(layout: NetworkLayout, msp_id: str, name: str) -> bytes:
    certs = sorted((layout.peer_dir(msp_id, name) / "msp" / "signcerts").glob("*.pem"))
    return serialize_identity(msp_id, certs[0].read_bytes() if certs else b"")
