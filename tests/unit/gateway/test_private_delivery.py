"""DeliverWithPrivateData sends a requester only the collections its organisation belongs to."""

from __future__ import annotations

from fabric_protos.ledger.rwset import rwset_pb2

from medalliance.contracts.collections import Collection
from medalliance.gateway.private_delivery import readable_private_data


def collection(name: str, *members: str) -> Collection:
    return Collection(name, frozenset(members), "", 0, 1, 0, True, False, None)


COLLECTIONS = {"shared": collection("shared", "A", "B"), "aOnly": collection("aOnly", "A")}


def tx(*names: str) -> rwset_pb2.TxPvtReadWriteSet:
    pvt = rwset_pb2.TxPvtReadWriteSet()
    ns = pvt.ns_pvt_rwset.add(namespace="private")
    for name in names:
        ns.collection_pvt_rwset.add(collection_name=name, rwset=name.encode())
    return pvt


def names(found: dict[int, rwset_pb2.TxPvtReadWriteSet]) -> dict[int, list[str]]:
    return {
        n: [c.collection_name for ns in pvt.ns_pvt_rwset for c in ns.collection_pvt_rwset]
        for n, pvt in found.items()
    }


def readable(msp: str) -> dict[int, list[str]]:
    held = {0: tx("shared", "aOnly"), 2: tx("aOnly"), 3: tx("gone")}
    return names(
        readable_private_data(held, msp, lambda ns: COLLECTIONS if ns == "private" else {})
    )


def test_a_member_gets_every_collection_it_belongs_to() -> None:
    assert readable("A") == {0: ["shared", "aOnly"], 2: ["aOnly"]}


def test_another_member_gets_only_the_shared_collection() -> None:
    assert readable("B") == {0: ["shared"]}


def test_a_non_member_gets_nothing_private() -> None:
    """Hostile reader of the channel: it reads every block, never a collection's values."""
    assert readable("C") == {}
