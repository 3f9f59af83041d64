"""Private data calls: Fabric's hashed read-write set on the ledger, values in the private set."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from tests.conftest import Org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.api import Context, Contract, transaction
from medalliance.contracts.collections import Collection
from medalliance.contracts.composite_key import create_composite_key
from medalliance.contracts.simulation import simulate
from medalliance.contracts.stub import Stub
from medalliance.errors import ContractError
from medalliance.identity.msp import MspManager
from medalliance.ledger.private_hashing import hashed_namespace, key_hash
from medalliance.ledger.state import Version, VersionedValue

NS = "assets"
COLL = "assetCollection"
SECRET = Collection(
    name=COLL,
    members=frozenset({"Org1MSP", "Org2MSP"}),
    member_policy="OR('Org1MSP.member','Org2MSP.member')",
    required_peer_count=0,
    max_peer_count=1,
    block_to_live=0,
    member_only_read=True,
    member_only_write=True,
    endorsement_policy=None,
)


class DictPrivate:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str, str], VersionedValue] = {}

    def get_private(self, namespace: str, collection: str, key: str) -> VersionedValue | None:
        return self.data.get((namespace, collection, key))

    def range_private(
        self, namespace: str, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        for ns, coll, key in sorted(self.data, key=lambda k: k[2].encode()):
            if (ns, coll) != (namespace, collection):
                continue
            if start_key and key.encode() < start_key.encode():
                continue
            if end_key and key.encode() >= end_key.encode():
                continue
            yield key, self.data[(ns, coll, key)]


def commit_private(
    state: DictState, private: DictPrivate, key: str, value: bytes, version: Version
) -> None:
    state.put(hashed_namespace(NS, COLL), key_hash(key).hex(), _sha(value), version)
    private.data[(NS, COLL, key)] = VersionedValue(value, version)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def new_stub(state: DictState, private: DictPrivate | None = None, *, msp: str = "Org1MSP") -> Stub:
    stub = Stub(
        state,
        NS,
        tx_id="tx1",
        channel_id="alliance",
        timestamp_ms=1,
        transient={"asset_properties": b"{}"},
        private=private or DictPrivate(),
        collections=lambda ns: {COLL: SECRET} if ns == NS else {},
        creator_msp=msp,
    )
    stub.begin_call("CreateAsset", read_only=False)
    return stub


def hashed_of(
    stub: Stub,
) -> tuple[rwset_pb2.CollectionHashedReadWriteSet, kv_rwset_pb2.HashedRWSet]:
    (ns,) = stub.rwset().ns_rwset
    (coll,) = ns.collection_hashed_rwset
    return coll, kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)


def test_key_and_value_hashes_are_fabrics_sha256() -> None:
    assert key_hash("asset1").hex() == hashlib.sha256(b"asset1").hexdigest()
    assert key_hash("é").hex() == hashlib.sha256("é".encode()).hexdigest()


def test_a_private_write_is_hashed_on_the_ledger_and_clear_only_in_the_private_set() -> None:
    state = DictState()
    stub = new_stub(state)
    stub.put_private_data(COLL, "asset1", b'{"size":5}')
    stub.del_private_data(COLL, "asset0")
    coll, hashed = hashed_of(stub)
    (ns,) = stub.rwset().ns_rwset
    assert kv_rwset_pb2.KVRWSet.FromString(ns.rwset).writes == []  # nothing public
    assert coll.collection_name == COLL
    writes = {w.key_hash: w for w in hashed.hashed_writes}
    assert writes[_sha(b"asset1")].value_hash == _sha(b'{"size":5}')
    assert writes[_sha(b"asset0")].is_delete
    assert not writes[_sha(b"asset0")].is_purge
    assert [w.key_hash for w in hashed.hashed_writes] == sorted(writes)
    assert b'{"size":5}' not in stub.rwset().SerializeToString()
    private = stub.ns_pvt_rwset()
    assert private is not None
    (pcoll,) = private.collection_pvt_rwset
    kv = kv_rwset_pb2.KVRWSet.FromString(pcoll.rwset)
    assert [(w.key, w.value, w.is_delete) for w in kv.writes] == [
        ("asset0", b"", True),
        ("asset1", b'{"size":5}', False),
    ]
    assert coll.pvt_rwset_hash == _sha(pcoll.rwset)


def test_purge_is_a_hashed_delete_marked_purge() -> None:
    stub = new_stub(DictState())
    stub.purge_private_data(COLL, "asset1")
    _, hashed = hashed_of(stub)
    (write,) = hashed.hashed_writes
    assert write.is_delete
    assert write.is_purge
    assert write.value_hash == b""


def test_a_member_reads_the_value_and_records_the_hashed_version() -> None:
    state, private = DictState(), DictPrivate()
    commit_private(state, private, "asset1", b"v1", Version(4, 2))
    stub = new_stub(state, private)
    assert stub.get_private_data(COLL, "asset1") == b"v1"
    assert stub.get_private_data(COLL, "missing") is None
    coll, hashed = hashed_of(stub)
    reads = {r.key_hash: r for r in hashed.hashed_reads}
    assert (reads[_sha(b"asset1")].version.block_num, reads[_sha(b"asset1")].version.tx_num) == (
        4,
        2,
    )
    assert not reads[_sha(b"missing")].HasField("version")
    assert coll.pvt_rwset_hash == b""  # reads only: no private set
    assert stub.ns_pvt_rwset() is None


def test_a_peer_without_the_value_refuses_rather_than_answering_stale_data() -> None:
    state, private = DictState(), DictPrivate()
    commit_private(state, private, "asset1", b"v1", Version(4, 2))
    private.data.clear()  # a non-member peer: the hash only
    with pytest.raises(ContractError, match="not available"):
        new_stub(state, private).get_private_data(COLL, "asset1")
    private.data[(NS, COLL, "asset1")] = VersionedValue(b"v0", Version(3, 0))  # behind the hash
    with pytest.raises(ContractError, match="not available"):
        new_stub(state, private).get_private_data(COLL, "asset1")


def test_the_hash_is_readable_by_anyone_the_value_only_by_members() -> None:
    state, private = DictState(), DictPrivate()
    commit_private(state, private, "asset1", b"v1", Version(4, 2))
    outsider = new_stub(state, private, msp="Org3MSP")
    assert outsider.get_private_data_hash(COLL, "asset1") == _sha(b"v1")
    with pytest.raises(ContractError, match="read access") as refused:
        outsider.get_private_data(COLL, "asset1")
    assert refused.value.status_code == 403
    with pytest.raises(ContractError, match="read access"):
        outsider.get_private_data_by_range(COLL, "", "")


def test_ranges_and_partial_composite_keys_over_private_data() -> None:
    state, private = DictState(), DictPrivate()
    for i, color in enumerate(["blue", "red", "blue"]):
        key = create_composite_key("color~id", [color, f"a{i}"])
        commit_private(state, private, key, f"v{i}".encode(), Version(2, i))
    commit_private(state, private, "plain", b"p", Version(2, 9))
    stub = new_stub(state, private)
    blue = [
        v for _, v in stub.get_private_data_by_partial_composite_key(COLL, "color~id", ["blue"])
    ]
    assert blue == [b"v0", b"v2"]
    assert [k for k, _ in stub.get_private_data_by_range(COLL, "p", "q")] == ["plain"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda s: s.put_private_data("nope", "k", b"v"), "not defined", id="undefined"
        ),
        pytest.param(lambda s: s.get_private_data("", "k"), "empty string", id="empty-collection"),
        pytest.param(lambda s: s.put_private_data(COLL, "", b"v"), "key", id="empty-key"),
        pytest.param(lambda s: s.put_private_data(COLL, "k", b""), "value is empty", id="empty"),
    ],
)
def test_bad_private_calls_are_refused(call: object, message: str) -> None:
    stub = new_stub(DictState())
    with pytest.raises(ContractError, match=message):
        call(stub)  # type: ignore[operator]


def test_an_evaluate_only_function_cannot_write_private_data() -> None:
    stub = new_stub(DictState())
    stub.begin_call("ReadAsset", read_only=True)
    with pytest.raises(ContractError, match="evaluate-only"):
        stub.put_private_data(COLL, "k", b"v")


class Assets(Contract):
    name = NS

    @transaction
    def CreateAsset(self, ctx: Context) -> None:
        ctx.stub.put_private_data(COLL, "asset1", ctx.stub.get_transient()["asset_properties"])


def test_simulation_returns_the_private_set_apart_from_the_ledger_rwset(
    org1: Org, msps: MspManager
) -> None:
    tx = dataclasses.replace(
        tx_context(org1, msps), collections=lambda ns: {COLL: SECRET}, private=DictPrivate()
    )
    tx = dataclasses.replace(tx, transient={"asset_properties": b'{"owner":"Tom"}'})
    result = simulate(Assets(), NS, [b"CreateAsset"], DictState(), tx)
    assert result.status == 200, result.message
    assert b"Tom" not in result.rwset
    private = rwset_pb2.TxPvtReadWriteSet.FromString(result.private_rwset)
    assert private.data_model == rwset_pb2.TxReadWriteSet.KV
    (ns,) = private.ns_pvt_rwset
    assert ns.namespace == NS
    assert ns.collection_pvt_rwset[0].collection_name == COLL
    assert b"Tom" in ns.collection_pvt_rwset[0].rwset
