"""The stub follows Fabric's simulator: what a contract reads and writes becomes the rwset."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.contracts.fakes import DictState

from medalliance.contracts.composite_key import create_composite_key
from medalliance.contracts.stub import Stub
from medalliance.errors import ContractError
from medalliance.ledger.mvcc import PHANTOM_READ_CONFLICT, VALID, MvccTx, check_block
from medalliance.ledger.state import Version

NS = "visit"


def new_stub(state: DictState, *, read_only: bool = False) -> Stub:
    stub = Stub(
        state, NS, tx_id="tx1", channel_id="alliance", timestamp_ms=1, transient={"secret": b"s"}
    )
    stub.begin_call("GetVisit", read_only=read_only)
    return stub


def kv_of(stub: Stub) -> kv_rwset_pb2.KVRWSet:
    txrw = stub.rwset()
    assert txrw.data_model == rwset_pb2.TxReadWriteSet.KV
    (ns,) = txrw.ns_rwset
    assert ns.namespace == NS
    return kv_rwset_pb2.KVRWSet.FromString(ns.rwset)


@pytest.fixture
def seeded(state: DictState) -> DictState:
    state.put(NS, "a", b"A", Version(3, 1))
    state.put(NS, "c", b"C", Version(4, 0))
    state.put(NS, create_composite_key("visit", ["V-1"]), b"{}", Version(5, 2))
    return state


def read_then_write_then_read(stub: Stub) -> list[bytes | None]:
    seen = [stub.get_state("a")]
    stub.put_state("a", b"mine")
    seen.append(stub.get_state("a"))
    return seen


def test_reads_see_committed_state_not_own_writes(seeded: DictState) -> None:
    stub = new_stub(seeded)
    assert read_then_write_then_read(stub) == [b"A", b"A"]
    assert [(r.key, r.version.block_num, r.version.tx_num) for r in kv_of(stub).reads] == [
        ("a", 3, 1)
    ]


@pytest.mark.parametrize(
    ("actions", "reads", "writes"),
    [
        pytest.param(
            lambda s: [s.get_state("c"), s.get_state("a"), s.get_state("c")],
            [("a", True), ("c", True)],
            [],
            id="reads are sorted by key and recorded once",
        ),
        pytest.param(
            lambda s: s.get_state("missing"),
            [("missing", False)],
            [],
            id="a read of an absent key records no version",
        ),
        pytest.param(
            lambda s: [s.put_state("z", b"1"), s.put_state("b", b"1"), s.put_state("b", b"2")],
            [],
            [("b", False, b"2"), ("z", False, b"1")],
            id="writes are sorted by key and the last write wins",
        ),
        pytest.param(
            lambda s: [s.put_state("b", b"1"), s.del_state("b")],
            [],
            [("b", True, b"")],
            id="a delete after a put records a delete",
        ),
        pytest.param(
            lambda s: s.del_state("a"),
            [],
            [("a", True, b"")],
            id="a blind delete records no read",
        ),
    ],
)
def test_rwset_rules(
    seeded: DictState,
    actions: Callable[[Stub], object],
    reads: list[tuple[str, bool]],
    writes: list[tuple[str, bool, bytes]],
) -> None:
    stub = new_stub(seeded)
    actions(stub)
    kv = kv_of(stub)
    assert [(r.key, r.HasField("version")) for r in kv.reads] == reads
    assert [(w.key, w.is_delete, w.value) for w in kv.writes] == writes


@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(lambda s: s.get_state(""), "must not be empty", id="an empty key"),
        pytest.param(lambda s: s.put_state("k", b""), "value is empty", id="an empty value"),
        pytest.param(lambda s: s.get_state("\ud800"), "UTF-8", id="a key that is not UTF-8"),
        pytest.param(
            lambda s: s.put_state("\x00plain", b"v"),
            "composite key",
            id="a key starting with U+0000 that is not a composite key",
        ),
        pytest.param(
            lambda s: list(s.get_state_by_range("\x00visit\x00", "")),
            "a simple key must not start with U.0000",
            id="a simple range over composite keys",
        ),
        pytest.param(lambda s: s.set_event("", b"x"), "name", id="an event without a name"),
    ],
)
def test_bad_keys_values_and_events_are_refused(
    seeded: DictState, action: Callable[[Stub], object], message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        action(new_stub(seeded))


def test_evaluate_only_functions_cannot_write(seeded: DictState) -> None:
    stub = new_stub(seeded, read_only=True)
    assert stub.get_state("a") == b"A"
    for write in (lambda: stub.put_state("k", b"v"), lambda: stub.del_state("k")):
        with pytest.raises(ContractError, match="GetVisit is evaluate-only and cannot write"):
            write()


def test_a_consumed_range_is_exhausted_and_keeps_its_end(seeded: DictState) -> None:
    stub = new_stub(seeded)
    assert [k for k, _ in stub.get_state_by_range("a", "z")] == ["a", "c"]
    (info,) = kv_of(stub).range_queries_info
    assert (info.start_key, info.end_key, info.itr_exhausted) == ("a", "z", True)
    assert [(r.key, r.version.block_num) for r in info.raw_reads.kv_reads] == [("a", 3), ("c", 4)]


def test_a_range_stopped_early_ends_at_its_last_key(seeded: DictState) -> None:
    stub = new_stub(seeded)
    first = next(stub.get_state_by_range("a", "z"))
    assert first[0] == "a"
    (info,) = kv_of(stub).range_queries_info
    assert (info.end_key, info.itr_exhausted) == ("a", False)
    assert [r.key for r in info.raw_reads.kv_reads] == ["a"]


def test_ranges_are_recorded_in_execution_order(seeded: DictState) -> None:
    stub = new_stub(seeded)
    list(stub.get_state_by_range("c", ""))
    list(stub.get_state_by_partial_composite_key("visit"))
    list(stub.get_state_by_range("a", "b"))
    starts = [i.start_key for i in kv_of(stub).range_queries_info]
    assert starts == ["c", create_composite_key("visit", []), "a"]


def test_an_unbounded_simple_range_skips_composite_keys_and_validates(seeded: DictState) -> None:
    stub = new_stub(seeded)
    assert [k for k, _ in stub.get_state_by_range("", "")] == ["a", "c"]
    # The committer re-runs the recorded range: composite keys must not turn it into a phantom.
    assert check_block(seeded, [MvccTx(0, ((NS, kv_of(stub)),), True)]) == [VALID]


def test_a_key_added_inside_a_read_range_is_a_phantom(seeded: DictState) -> None:
    stub = new_stub(seeded)
    list(stub.get_state_by_range("a", "z"))
    seeded.put(NS, "b", b"B")
    assert check_block(seeded, [MvccTx(0, ((NS, kv_of(stub)),), True)]) == [PHANTOM_READ_CONFLICT]


def test_partial_composite_keys_select_their_prefix(seeded: DictState) -> None:
    seeded.put(NS, create_composite_key("visit", ["V-2"]), b"{}")
    seeded.put(NS, create_composite_key("visitor", ["X"]), b"{}")
    stub = new_stub(seeded)
    keys = [k for k, _ in stub.get_state_by_partial_composite_key("visit", [])]
    assert keys == [create_composite_key("visit", ["V-1"]), create_composite_key("visit", ["V-2"])]


def test_rich_queries_and_history_record_no_reads(seeded: DictState) -> None:
    seeded.put(NS, "doc", b'{"hospital":"Org1MSP"}')
    stub = new_stub(seeded)
    assert [k for k, _ in stub.get_query_result('{"selector":{"hospital":"Org1MSP"}}')] == ["doc"]
    assert list(stub.get_history_for_key("doc")) == []
    stub.put_state("w", b"1")  # so the namespace appears
    kv = kv_of(stub)
    assert (list(kv.reads), list(kv.range_queries_info)) == ([], [])


def test_one_event_per_transaction_the_last_wins(seeded: DictState) -> None:
    stub = new_stub(seeded)
    stub.set_event("First", b"1")
    stub.set_event("Second", b"2")
    event_bytes = stub.event_bytes()
    assert event_bytes is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(event_bytes)
    assert (event.chaincode_id, event.tx_id, event.event_name, event.payload) == (
        NS,
        "tx1",
        "Second",
        b"2",
    )


def test_transient_data_is_available_but_not_in_the_rwset(seeded: DictState) -> None:
    stub = new_stub(seeded)
    assert stub.get_transient()["secret"] == b"s"
    assert b"secret" not in stub.rwset().SerializeToString()
