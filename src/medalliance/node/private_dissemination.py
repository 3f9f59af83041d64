"""Private read-write sets between peers: push at endorsement, fetch to reconcile.

Fabric's rules (docs/private-data.md): the endorsing peer keeps the private set in its transient
store and pushes each collection's part to peers of the collection's member organisations — at
least `requiredPeerCount` must accept it or the endorsement fails, at most `maxPeerCount` are
tried. A peer accepts (and a peer answers a fetch) only for collections of the committed
definition whose member policy names the other side's organisation; what a peer keeps is checked
against the committed hashes at commit, so a forged set is never kept. A member peer that
missed a set at commit fetches it from other member peers (`reconcile`), then and at later
commits, until it has it.

The transport is a `PrivateLink` (one per peer): in process for the embedded network, the
`medalliance.PrivateData` gRPC service between processes. This module is the policy, not the I/O.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from fabric_protos.ledger.rwset import rwset_pb2
from google.protobuf.message import DecodeError

from medalliance.contracts.collections import Collection
from medalliance.errors import PreconditionFailed
from medalliance.ledger.private_hashing import HashedCollection, parse_hashed
from medalliance.ledger.tx import parse_envelope
from medalliance.node.channel import PeerChannel
from medalliance.node.collection_store import Missing

log = logging.getLogger(__name__)


class PrivateLink(Protocol):
    """How one peer reaches the other peers of its channels."""

    def peers(self, channel_id: str, msp_id: str) -> list[str]:
        """Names of the peers of organisation `msp_id` on the channel (not the caller)."""
        ...

    def push(self, peer: str, channel_id: str, tx_id: str, pvt_rwset: bytes) -> bool:
        """Offer a private set to `peer`; whether it accepted it."""
        ...

    def fetch(
        self, peer: str, channel_id: str, tx_id: str, namespace: str, collection: str
    ) -> bytes | None:
        """A committed collection set (serialized KVRWSet) from `peer`, if it answers."""
        ...


@dataclass(frozen=True, slots=True)
class Pushed:
    collection: str
    peers: tuple[str, ...]


def filter_for(pvt_rwset: bytes, allowed: Iterable[tuple[str, str]]) -> bytes:
    """The part of a TxPvtReadWriteSet of the (namespace, collection) pairs in `allowed`; b""
    when none."""
    keep = set(allowed)
    txp = rwset_pb2.TxPvtReadWriteSet.FromString(pvt_rwset)
    out = rwset_pb2.TxPvtReadWriteSet(data_model=txp.data_model)
    for ns in txp.ns_pvt_rwset:
        colls = [c for c in ns.collection_pvt_rwset if (ns.namespace, c.collection_name) in keep]
        if colls:
            out.ns_pvt_rwset.add(namespace=ns.namespace, collection_pvt_rwset=colls)
    return bytes(out.SerializeToString()) if out.ns_pvt_rwset else b""


def collections_in(pvt_rwset: bytes) -> list[tuple[str, str]]:
    txp = rwset_pb2.TxPvtReadWriteSet.FromString(pvt_rwset)
    return [
        (ns.namespace, c.collection_name)
        for ns in txp.ns_pvt_rwset
        for c in ns.collection_pvt_rwset
    ]


def keep_own(channel: PeerChannel, self_msp: str, tx_id: str, pvt_rwset: bytes) -> None:
    """Keep the parts of an endorsed private set for collections this peer's organisation is a
    member of: a non-member endorser passes the values on but holds none of them."""
    if channel.private is None:
        return
    own = [
        (namespace, name)
        for namespace, name in collections_in(pvt_rwset)
        if (c := channel.collections_of(namespace).get(name)) is not None and c.is_member(self_msp)
    ]
    part = filter_for(pvt_rwset, own) if own else b""
    if part:
        channel.private.put_transient(tx_id, part)


def push_parts(
    channel: PeerChannel, self_msp: str, tx_id: str, pvt_rwset: bytes
) -> list[tuple[Collection, str, bytes]]:
    """Keep an endorsed private set in this peer's transient store (`keep_own`); each committed
    collection it writes with (namespace, the part of the set to push)."""
    keep_own(channel, self_msp, tx_id, pvt_rwset)
    parts = []
    for namespace, name in collections_in(pvt_rwset):
        collection = channel.collections_of(namespace).get(name)
        if collection is not None:  # the simulation refused undefined collections
            parts.append((collection, namespace, filter_for(pvt_rwset, [(namespace, name)])))
    return parts


def check_required(collection: Collection, accepted: list[str]) -> Pushed:
    """Raises `PreconditionFailed` (the endorsement fails) below `requiredPeerCount`."""
    if len(accepted) < collection.required_peer_count:
        raise PreconditionFailed(
            f"private data of collection {collection.name} reached {len(accepted)} peer(s); "
            f"requiredPeerCount is {collection.required_peer_count}"
        )
    return Pushed(collection.name, tuple(accepted))


def disseminate(
    channel: PeerChannel, self_msp: str, link: PrivateLink, tx_id: str, pvt_rwset: bytes
) -> list[Pushed]:
    """Push each collection's part to member peers, at most `maxPeerCount` of them; raises
    `PreconditionFailed` when fewer than `requiredPeerCount` accepted it."""
    pushed = []
    for collection, _, part in push_parts(channel, self_msp, tx_id, pvt_rwset):
        accepted: list[str] = []
        peers_of = functools.partial(link.peers, channel.channel_id)
        for peer in candidates(collection, self_msp, peers_of):
            if len(accepted) >= collection.max_peer_count:
                break
            try:
                if link.push(peer, channel.channel_id, tx_id, part):
                    accepted.append(peer)
            except Exception as exc:  # an unreachable peer is one fewer, not a failure
                log.warning(
                    "private data push failed",
                    extra={"peer": peer, "tx_id": tx_id, "error": type(exc).__name__},
                )
        pushed.append(check_required(collection, accepted))
    return pushed


def candidates(
    collection: Collection, self_msp: str, peers_of: Callable[[str], list[str]]
) -> list[str]:
    """Member organisations' peers to push to: other organisations' first, as a copy outside
    the endorsing organisation survives its loss."""
    orgs = sorted(collection.members, key=lambda m: (m == self_msp, m))
    return [peer for msp in orgs for peer in peers_of(msp)]


def accept_push(
    channel: PeerChannel, self_msp: str, sender_msp: str, tx_id: str, pvt_rwset: bytes
) -> bool:
    """Keep the parts of a pushed set for collections both sides are members of; whether
    anything new was kept. A committed tx's set is not taken this way (reconciliation checks)."""
    if channel.private is None or channel.store.contains_tx(tx_id):
        return False
    try:
        offered = collections_in(pvt_rwset)
    except DecodeError:
        return False
    allowed = []
    for namespace, name in offered:
        collection = channel.collections_of(namespace).get(name)
        if collection and collection.is_member(self_msp) and collection.is_member(sender_msp):
            allowed.append((namespace, name))
    part = filter_for(pvt_rwset, allowed) if allowed else b""
    return bool(part) and channel.private.put_transient(tx_id, part)


def answer_fetch(
    channel: PeerChannel, requester_msp: str, tx_id: str, namespace: str, collection: str
) -> bytes | None:
    """A committed collection set for a member organisation's peer; None for anyone else."""
    found = channel.collections_of(namespace).get(collection)
    if channel.private is None or found is None or not found.is_member(requester_msp):
        return None
    return channel.private.committed_set(tx_id, namespace, collection)


def gaps_to_fill(channel: PeerChannel) -> list[tuple[Missing, HashedCollection, Collection]]:
    """This member peer's gaps with what a fetched set must match."""
    if channel.private is None:
        return []
    found = []
    for gap in channel.private.missing():
        collection = channel.collections_of(gap.namespace).get(gap.collection)
        hashed = _hashed_of(channel, gap)
        if collection is not None and hashed is not None:
            found.append((gap, hashed, collection))
    return found


def reconcile(channel: PeerChannel, self_msp: str, link: PrivateLink) -> int:
    """Fetch the private sets this member peer missed from other member peers; how many gaps it
    filled. Gaps left are retried at the next call."""
    store = channel.private
    filled = 0
    for gap, hashed, collection in gaps_to_fill(channel):
        peers_of = functools.partial(link.peers, channel.channel_id)
        for peer in candidates(collection, self_msp, peers_of):
            try:
                data = link.fetch(
                    peer, channel.channel_id, gap.tx_id, gap.namespace, gap.collection
                )
            except Exception as exc:  # unreachable now: retried later
                log.info(
                    "private data fetch failed",
                    extra={"peer": peer, "tx_id": gap.tx_id, "error": type(exc).__name__},
                )
                continue
            if (
                data is not None
                and store is not None
                and store.reconcile(gap, data, hashed, collection)
            ):
                filled += 1
                break
    return filled


def _hashed_of(channel: PeerChannel, gap: Missing) -> HashedCollection | None:
    block = channel.store.get_block(gap.block)
    view = parse_envelope(bytes(block.data.data[gap.tx]))
    for h in parse_hashed(view.endorser_tx().rwset):
        if (h.namespace, h.collection) == (gap.namespace, gap.collection):
            return h
    return None
