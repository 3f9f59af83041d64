"""Simulation follows Fabric's stub semantics and yields deterministic read-write sets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org

from medalliance.contracts.api import Context, Contract, transaction
from medalliance.contracts.composite_key import create_composite_key, split_composite_key
from medalliance.contracts.determinism import check_contract_source, contract_running
from medalliance.contracts.simulation import (
    MESSAGE_CHARS_MAX,
    TxContext,
    bounded_message,
    simulate,
)
from medalliance.errors import ContractError
from medalliance.identity.client_id import client_id
from medalliance.identity.msp import MspManager
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites, Write


class Sample(Contract):
    name = "sample"

    @transaction
    def Put(self, ctx: Context, key: str, value: str) -> None:
        ctx.stub.put_state(key, value.encode())

    @transaction
    def ReadWriteRead(self, ctx: Context, key: str) -> str:
        before = ctx.stub.get_state(key)
        ctx.stub.put_state(key, b"mine")
        after = ctx.stub.get_state(key)
        ctx.stub.put_state("z", b"1")
        ctx.stub.put_state("b", b"1")
        ctx.stub.put_state("b", b"2")
        return f"{before!r} {after!r}"

    @transaction
    def Scan(self, ctx: Context) -> list[str]:
        return [k for k, _ in ctx.stub.get_state_by_range("a", "")]

    @transaction(evaluate=True)
    def Peek(self, ctx: Context, key: str) -> str:
        ctx.stub.put_state(key, b"x")
        return "unreachable"

    @transaction
    def Refuse(self, ctx: Context) -> None:
        raise ContractError("not today", 403)

    @transaction
    def Crash(self, ctx: Context) -> None:
        raise ZeroDivisionError

    @transaction
    def Raw(self, ctx: Context, data: bytes) -> bytes:
        return data[::-1]

    @transaction(evaluate=True)
    def WhoAsks(self, ctx: Context) -> list[str]:
        return [ctx.client.msp_id, ctx.client.id, ctx.peer_msp_id]


@pytest.fixture
def state(tmp_path: Path) -> SqliteState:
    s = SqliteState.open(tmp_path / "s.db")
    s.apply_block(0, [])
    s.apply_block(
        1, [TxWrites(0, "t", 0, (Write("sample", "a", b"old"), Write("sample", "c", b"c")))]
    )
    return s


@pytest.fixture
def tx(org1: Org, msps: MspManager) -> TxContext:
    creator = msps.deserialize(org1.signer("u").serialized_identity, at=NOW)
    return TxContext("ch", "tx1", 1_700_000_000_000, creator)


def run(state: SqliteState, tx: TxContext, *args: bytes):  # type: ignore[no-untyped-def]
    return simulate(Sample(), "sample", list(args), state, tx)


def kv(result) -> kv_rwset_pb2.KVRWSet:  # type: ignore[no-untyped-def]
    txrw = rwset_pb2.TxReadWriteSet()
    txrw.ParseFromString(result.rwset)
    out = kv_rwset_pb2.KVRWSet()
    out.ParseFromString(txrw.ns_rwset[0].rwset)
    return out


def test_no_read_your_writes_sorted_writes_last_write_wins(
    state: SqliteState, tx: TxContext
) -> None:
    result = run(state, tx, b"ReadWriteRead", b"a")
    assert result.status == 200
    assert result.payload == b"b'old' b'old'"
    rw = kv(result)
    assert [(r.key, r.version.block_num) for r in rw.reads] == [("a", 1)]
    assert [(w.key, w.value) for w in rw.writes] == [("a", b"mine"), ("b", b"2"), ("z", b"1")]


def test_range_reads_are_recorded_for_phantom_checks(state: SqliteState, tx: TxContext) -> None:
    rw = kv(run(state, tx, b"Scan"))
    (info,) = rw.range_queries_info
    assert info.itr_exhausted
    assert [r.key for r in info.raw_reads.kv_reads] == ["a", "c"]


def test_simulation_is_deterministic(state: SqliteState, tx: TxContext) -> None:
    assert run(state, tx, b"ReadWriteRead", b"a") == run(state, tx, b"ReadWriteRead", b"a")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        pytest.param(
            [b"Put", b"k"], 400, "Put takes 2 arguments, got 1", id="wrong argument count"
        ),
        pytest.param([b"Nope"], 404, "has no function Nope", id="unknown function"),
        pytest.param(
            [b"Put", b"\xff", b"v"], 400, "argument 1 of Put is not UTF-8", id="non UTF-8 argument"
        ),
        pytest.param(
            [b"Peek", b"k"],
            400,
            "evaluate-only and cannot write",
            id="evaluate-only functions cannot write",
        ),
        pytest.param([b"Refuse"], 403, "not today", id="a contract refusal keeps its status"),
        pytest.param([b"Crash"], 500, "internal error", id="a contract bug is a generic 500"),
        pytest.param([b"Put", b"", b"v"], 500, "must not be empty", id="an empty key is refused"),
        pytest.param([], 400, "function name", id="no function at all"),
    ],
)
def test_refusals_write_nothing(
    state: SqliteState, tx: TxContext, args: list[bytes], status: int, message: str
) -> None:
    result = run(state, tx, *args)
    assert result.status == status
    assert message in result.message
    assert (result.rwset, result.event) == (b"", None)


def test_qualified_names_and_raw_bytes(state: SqliteState, tx: TxContext) -> None:
    assert run(state, tx, b"sample:Raw", b"\x01\xff").payload == b"\xff\x01"


def test_the_contract_sees_the_client_id_and_the_peer_organisation(
    state: SqliteState, tx: TxContext
) -> None:
    result = run(state, replace(tx, peer_msp_id="Org2MSP"), b"WhoAsks")
    cert = tx.creator.certificate
    assert json.loads(result.payload) == ["Org1MSP", client_id(cert), "Org2MSP"]
    assert client_id(cert).startswith("x509::CN=u@Org1MSP,OU=client,")


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\x00\U0010ffff", blacklist_categories=("Cs",)),
        min_size=1,
    ),
    st.lists(
        st.text(
            alphabet=st.characters(
                blacklist_characters="\x00\U0010ffff", blacklist_categories=("Cs",)
            )
        )
    ),
)
def test_composite_keys_round_trip(object_type: str, attributes: list[str]) -> None:
    assert split_composite_key(create_composite_key(object_type, attributes)) == (
        object_type,
        tuple(attributes),
    )


def test_static_determinism_check_flags_clocks_randomness_and_io() -> None:
    findings = check_contract_source(
        "import random\nfrom time import time\nimport datetime\nx = datetime.datetime.now()\nopen('f')\n"
    )
    assert len(findings) == 4
    assert (
        check_contract_source("import json\nimport datetime as dt\ndt.datetime.fromtimestamp(0)\n")
        == []
    )


def test_runtime_guard_refuses_io_inside_contract_code(tmp_path: Path) -> None:
    with contract_running(), pytest.raises(RuntimeError, match="deterministic"):
        (tmp_path / "f").open("w")
    (tmp_path / "f").write_text("outside contract code is fine")


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        pytest.param("no asset a1", [b"Read", b"a1"], "no asset a1", id="short arguments stay"),
        pytest.param(
            f"no asset {'x' * 100}",
            [b"Read", b"x" * 100],
            f"no asset {'x' * 64}… (100 bytes)",
            id="a long argument is quoted by its prefix and size",
        ),
        pytest.param(
            f"bad id {'y' * 70!r} and {'y' * 70}",
            [b"Read", b"y" * 70],
            f"bad id '{'y' * 64}… (70 bytes)' and {'y' * 64}… (70 bytes)",
            id="every occurrence, repr included",
        ),
        pytest.param(
            f"Read {'Read' * 30}",
            [b"Read" * 30, b"a"],
            f"Read {'Read' * 30}",
            id="the function name is not an argument",
        ),
    ],
)
def test_refusals_quote_arguments_by_a_prefix(
    message: str, args: list[bytes], expected: str
) -> None:
    assert bounded_message(message, args) == expected


def test_a_refusal_is_cut_at_its_maximum() -> None:
    text = "\n".join(["line"] * 1000)  # repr escapes it, so only the cut bounds it
    bounded = bounded_message(f"bad {text!r}", [b"F", text.encode()])
    assert len(bounded) == MESSAGE_CHARS_MAX
    assert bounded.endswith("…")
