"""Private data at commit: collection rules, collection endorsement policies, hashed MVCC.

Contract `cc` needs AND(A, B). Collection `shared` has members A and B (memberOnlyWrite);
collection `own` has member C and its own endorsement policy OR(C). Read-write sets come from the
stub, as endorsers build them, and are validated against a real SQLite state.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import policy_pb2
from tests.conftest import NOW, Org, make_org

from medalliance.contracts.collections import Collection
from medalliance.contracts.stub import Stub
from medalliance.identity.msp import MspManager
from medalliance.identity.policy import SignedData, parse_policy
from medalliance.identity.signing import Signer
from medalliance.ledger.private_hashing import hashed_namespace, key_hash, value_hash
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites
from medalliance.ledger.tx import (
    Code,
    new_proposal_response,
    new_signed_proposal,
    new_transaction_payload,
    parse_signed_proposal,
    sign_envelope,
)
from medalliance.ledger.validation import BlockResult, NamespacePolicy, validate_block

VALID = Code.Value("VALID")
FAILURE = Code.Value("ENDORSEMENT_POLICY_FAILURE")
TS_MS = int(NOW.timestamp() * 1000) + 60_000


def _app_policy(dsl: str) -> bytes:
    return bytes(
        policy_pb2.ApplicationPolicy(signature_policy=parse_policy(dsl)).SerializeToString()
    )


def _collection(name: str, members: str, *, policy: str | None = None) -> Collection:
    return Collection(
        name=name, members=frozenset(members.split()), member_policy="", required_peer_count=0,
        max_peer_count=1, block_to_live=0, member_only_read=True, member_only_write=True,
        endorsement_policy=_app_policy(policy) if policy else None,
    )  # fmt: skip


COLLECTIONS = {
    "shared": _collection("shared", "AMSP BMSP"),
    "own": _collection("own", "CMSP", policy="OR('CMSP.peer')"),
}
DEFINITION = NamespacePolicy(_app_policy("AND('AMSP.peer', 'BMSP.peer')"), collections=COLLECTIONS)


@dataclass
class Channel:
    msps: MspManager
    channel_id: str = "ch"
    application_msp_ids: tuple[str, ...] = ("AMSP", "BMSP", "CMSP")
    orgs: Mapping[str, object] = field(default_factory=dict)

    def evaluate_policy(self, path: str, signed: Sequence[SignedData], *, at: dt.datetime) -> bool:
        raise AssertionError("no channel policy is needed by these transactions")


@pytest.fixture(scope="module")
def orgs() -> dict[str, Org]:
    return {m: make_org(m) for m in ("AMSP", "BMSP", "CMSP")}


@pytest.fixture(scope="module")
def peers(orgs: dict[str, Org]) -> dict[str, Signer]:
    return {m[0]: org.signer("peer0", ou="peer") for m, org in orgs.items()}


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqliteState]:
    s = SqliteState.open(tmp_path / "state.db")
    s.apply_block(0, [])
    yield s
    s.close()


Simulation = Callable[[Stub], None]


def envelope(
    orgs: dict[str, Org],
    peers: dict[str, Signer],
    state: SqliteState,
    run: Simulation,
    endorsers: str,
    *,
    client_msp: str = "AMSP",
    collections: Mapping[str, Collection] = COLLECTIONS,
    tamper: Callable[[rwset_pb2.TxReadWriteSet], None] | None = None,
) -> bytes:
    client = orgs[client_msp].signer("User1")
    signed, _ = new_signed_proposal(
        client, channel_id="ch", chaincode="cc", args=[b"f"], nonce=os.urandom(24),
        timestamp_ms=TS_MS,
    )  # fmt: skip
    proposal = parse_signed_proposal(signed)
    stub = Stub(
        state, "cc", tx_id=proposal.tx_id, channel_id="ch", timestamp_ms=TS_MS, transient={},
        collections=lambda ns: collections, creator_msp=client_msp,
    )  # fmt: skip
    stub.begin_call("f", read_only=False)
    run(stub)
    txrw = stub.rwset()
    if tamper:
        tamper(txrw)
    rwset = bytes(txrw.SerializeToString())
    responses = [
        new_proposal_response(proposal, peers[e], chaincode_version="1", status=200,
                              message="", payload=b"", rwset=rwset, event=None)
        for e in endorsers
    ]  # fmt: skip
    return sign_envelope(new_transaction_payload(proposal, responses), client)


def validate(
    orgs: dict[str, Org], state: SqliteState, envelopes: Sequence[bytes], number: int = 1
) -> BlockResult:
    block = common_pb2.Block()
    block.header.number = number
    block.data.data.extend(envelopes)
    result = validate_block(
        block,
        config=Channel(MspManager([o.msp for o in orgs.values()])),
        policy_for=lambda ns: DEFINITION if ns == "cc" else None,
        state=state,
        committed_txs=lambda tx_ids: frozenset(),
    )
    state.apply_block(
        number,
        [TxWrites(t.tx_num, t.tx_id, 0, t.writes, t.metadata) for t in result.txs if t.code == 0],
    )
    return result


def put(collection: str, key: str = "k", value: bytes = b"secret") -> Simulation:
    return lambda stub: stub.put_private_data(collection, key, value)


@pytest.mark.parametrize(
    ("run", "endorsers", "client", "code"),
    [
        pytest.param(put("shared"), "AB", "AMSP", VALID, id="a member's write with the contract's policy met"),
        pytest.param(put("shared"), "A", "AMSP", FAILURE, id="the contract's policy applies to a collection without its own"),
        pytest.param(put("shared"), "AB", "CMSP", FAILURE, id="memberOnlyWrite refuses a non-member client"),
        pytest.param(put("own"), "C", "CMSP", VALID, id="a collection's own policy replaces the contract's"),
        pytest.param(put("own"), "AB", "CMSP", FAILURE, id="the contract's endorsers do not meet the collection's policy"),
        pytest.param(lambda s: (put("own")(s), s.put_state("pub", b"v")), "C", "CMSP", FAILURE, id="a public write brings the contract's policy back"),
        pytest.param(lambda s: (put("own")(s), s.put_state("pub", b"v")), "ABC", "CMSP", VALID, id="both policies met"),
    ],
)  # fmt: skip
def test_private_write_rules(
    orgs: dict[str, Org],
    peers: dict[str, Signer],
    state: SqliteState,
    run: Simulation,
    endorsers: str,
    client: str,
    code: int,
) -> None:
    result = validate(
        orgs, state, [envelope(orgs, peers, state, run, endorsers, client_msp=client)]
    )
    assert result.codes == (code,), result.txs[0].reason


def test_a_valid_write_commits_only_hashes_to_the_hashed_state(
    orgs: dict[str, Org], peers: dict[str, Signer], state: SqliteState
) -> None:
    assert validate(orgs, state, [envelope(orgs, peers, state, put("shared"), "AB")]).codes == (0,)
    held = state.get(hashed_namespace("cc", "shared"), key_hash("k").hex())
    assert held is not None
    assert held.value == value_hash(b"secret")
    assert state.get("cc", "k") is None


def test_a_write_to_an_undefined_collection_fails_endorsement(
    orgs: dict[str, Org], peers: dict[str, Signer], state: SqliteState
) -> None:
    extra = {**COLLECTIONS, "ghost": _collection("ghost", "AMSP")}
    tx = envelope(orgs, peers, state, put("ghost"), "AB", collections=extra)
    result = validate(orgs, state, [tx])
    assert result.codes == (FAILURE,)
    assert "not defined" in result.txs[0].reason


def test_private_reads_are_checked_by_hashed_mvcc(
    orgs: dict[str, Org], peers: dict[str, Signer], state: SqliteState
) -> None:
    def read_then_write(stub: Stub) -> None:
        assert stub.get_private_data("shared", "k") is None  # read before k exists
        stub.put_private_data("shared", "k2", b"x")

    stale = envelope(orgs, peers, state, read_then_write, "AB")
    writer = envelope(orgs, peers, state, put("shared", value=b"v1"), "AB")
    assert validate(orgs, state, [writer, stale]).codes == (
        VALID,
        Code.Value("MVCC_READ_CONFLICT"),
    )


def test_a_hacked_hash_or_a_write_into_the_hashed_namespace_is_refused(
    orgs: dict[str, Org], peers: dict[str, Signer], state: SqliteState
) -> None:
    def short_hash(txrw: rwset_pb2.TxReadWriteSet) -> None:
        coll = txrw.ns_rwset[0].collection_hashed_rwset[0]
        hashed = kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)
        hashed.hashed_writes[0].value_hash = b"short"
        coll.hashed_rwset = hashed.SerializeToString()

    def direct(txrw: rwset_pb2.TxReadWriteSet) -> None:
        kv = kv_rwset_pb2.KVRWSet()
        kv.writes.add(key=key_hash("k").hex(), value=value_hash(b"forged"))
        txrw.ns_rwset.add(namespace=hashed_namespace("cc", "shared"), rwset=kv.SerializeToString())

    bad = envelope(orgs, peers, state, put("shared"), "AB", tamper=short_hash)
    forged = envelope(orgs, peers, state, put("shared"), "AB", tamper=direct)
    result = validate(orgs, state, [bad, forged])
    assert result.codes == (Code.Value("BAD_RWSET"), Code.Value("INVALID_CHAINCODE"))
    assert state.get(hashed_namespace("cc", "shared"), key_hash("k").hex()) is None
