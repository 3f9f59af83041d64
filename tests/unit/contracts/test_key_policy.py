"""Contracts set and read key-level endorsement policies; the endorser reports those it hit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from medalliance.contracts.key_policy import chaincode_interest, key_policy, peers_policy
from medalliance.contracts.stub import Stub
from medalliance.errors import ContractError
from medalliance.identity.policy import format_policy
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import VALIDATION_PARAMETER, MetadataWrite, TxWrites, Write

NS = "report"
OLD = key_policy("AND('A.peer', 'B.peer')")
NEW = key_policy("OR('C.peer', 'D.peer')")


@pytest.fixture
def state(tmp_path: Path) -> SqliteState:
    """`kept` has a key policy and another metadata entry; `plain` has neither."""
    s = SqliteState.open(tmp_path / "state.db")
    s.apply_block(0, [])
    entries = ((VALIDATION_PARAMETER, OLD), ("other", b"x"))
    s.apply_block(
        1,
        [
            TxWrites(
                0,
                "t",
                0,
                (Write(NS, "kept", b"1"), Write(NS, "plain", b"2")),
                (MetadataWrite(NS, "kept", entries),),
            )
        ],
    )
    return s


def stub(state: SqliteState, *, read_only: bool = False) -> Stub:
    s = Stub(state, NS, tx_id="t", channel_id="ch", timestamp_ms=0, transient={})
    s.begin_call("F", read_only=read_only)
    return s


def kv(s: Stub) -> kv_rwset_pb2.KVRWSet:
    return kv_rwset_pb2.KVRWSet.FromString(s.ns_rwset().rwset)


def test_a_contract_reads_the_committed_policy_and_the_read_is_recorded(
    state: SqliteState,
) -> None:
    s = stub(state)
    assert s.get_state_validation_parameter("kept") == OLD
    assert s.get_state_validation_parameter("plain") is None
    assert [(r.key, r.version.block_num) for r in kv(s).reads] == [("kept", 1), ("plain", 1)]


def test_setting_a_policy_writes_the_keys_whole_metadata_and_keeps_other_entries(
    state: SqliteState,
) -> None:
    s = stub(state)
    s.set_state_validation_parameter("kept", NEW)
    s.put_state("fresh", b"v")
    s.set_state_validation_parameter("fresh", NEW)
    writes = {m.key: {e.name: e.value for e in m.entries} for m in kv(s).metadata_writes}
    assert writes == {"fresh": {VALIDATION_PARAMETER: NEW},
                      "kept": {VALIDATION_PARAMETER: NEW, "other": b"x"}}  # fmt: skip
    assert s.get_state_validation_parameter("kept") == OLD  # committed until the tx commits


def test_an_empty_policy_returns_the_key_to_the_contracts_policy(state: SqliteState) -> None:
    s = stub(state)
    s.set_state_validation_parameter("kept", b"")
    (write,) = kv(s).metadata_writes
    assert [(e.name, e.value) for e in write.entries] == [("other", b"x")]


@pytest.mark.parametrize(
    ("key", "policy", "message"),
    [
        pytest.param("missing", NEW, "set the value of a key before", id="a key that does not exist"),
        pytest.param("plain", b"\xff\xfe", "must be a SignaturePolicyEnvelope", id="bytes that do not decode"),
        pytest.param("plain", b"\x08\x01", "needs version 0, a rule and principals", id="an envelope without a rule"),
    ],
)  # fmt: skip
def test_a_policy_that_cannot_apply_is_refused(
    state: SqliteState, key: str, policy: bytes, message: str
) -> None:
    s = stub(state)
    with pytest.raises(ContractError, match=message) as refused:
        s.set_state_validation_parameter(key, policy)
    assert refused.value.status_code == 400
    assert not kv(s).metadata_writes


def test_an_evaluation_cannot_set_a_policy(state: SqliteState) -> None:
    with pytest.raises(ContractError, match="evaluate-only"):
        stub(state, read_only=True).set_state_validation_parameter("kept", NEW)


def test_policies_are_built_from_principals() -> None:
    assert (
        peers_policy(["A", "A"], ["B", "A", "C"]) == "AND('A.peer', OutOf(1, 'B.peer', 'C.peer'))"
    )
    assert peers_policy(["A", "B"]) == "AND('A.peer', 'B.peer')"
    assert peers_policy(["A"]) == "'A.peer'"
    with pytest.raises(ContractError, match="does not parse") as refused:
        key_policy("AND('A.peer'")
    assert refused.value.status_code == 400


def test_the_interest_lists_the_policies_of_the_keys_written(state: SqliteState) -> None:
    s = stub(state)
    s.put_state("kept", b"3")
    only_keyed = chaincode_interest(s.rwset().SerializeToString(), NS, state)
    (call,) = only_keyed.chaincodes
    assert call.name == NS
    assert [format_policy(p) for p in call.key_policies] == ["AND('A.peer', 'B.peer')"]
    assert call.disregard_namespace_policy  # every key written has its own policy
    s.put_state("plain", b"4")
    mixed = chaincode_interest(s.rwset().SerializeToString(), NS, state)
    assert not mixed.chaincodes[0].disregard_namespace_policy


def test_a_read_only_call_names_only_the_invoked_contract(state: SqliteState) -> None:
    empty = rwset_pb2.TxReadWriteSet().SerializeToString()
    interest = chaincode_interest(empty, "visit", state)
    assert [(c.name, len(c.key_policies), c.disregard_namespace_policy)
            for c in interest.chaincodes] == [("visit", 0, False)]  # fmt: skip
