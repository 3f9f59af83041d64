"""A contract calls another contract of the channel within one transaction (Fabric's
chaincode-to-chaincode call): one read-write set with a namespace per contract."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.conftest import NOW, Org

from medalliance.contracts.api import Context, Contract, transaction
from medalliance.contracts.simulation import MAX_CALL_DEPTH, SimulationResult, TxContext, simulate
from medalliance.errors import ContractError
from medalliance.identity.msp import MspManager
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites, Write


class Ledger(Contract):
    name = "ledger"

    @transaction
    def Move(self, ctx: Context, key: str, to: str) -> str:
        if ctx.called_by != "desk":
            raise ContractError(f"Move is for the desk, not {ctx.called_by}", 403)
        held = ctx.stub.get_state(key)
        if held is None:
            raise ContractError(f"{key} does not exist", 404)
        ctx.stub.put_state(key, to.encode())
        ctx.stub.set_event("Moved", b"callee event")
        return f"{key}:{held.decode()}->{to}"

    @transaction(evaluate=True)
    def Peek(self, ctx: Context, key: str) -> str:
        ctx.stub.put_state(key, b"sneaky")
        return "unreachable"


class Desk(Contract):
    name = "desk"

    @transaction
    def Transfer(self, ctx: Context, key: str, to: str) -> str:
        moved = ctx.stub.invoke_chaincode("ledger", ["Move", key, to]).decode()
        ctx.stub.put_state(f"log-{key}", moved.encode())
        ctx.stub.set_event("Transferred", json.dumps({"by": ctx.client.msp_id}).encode())
        return moved

    @transaction
    def Call(self, ctx: Context, contract: str, function: str, arg: str) -> str:
        return ctx.stub.invoke_chaincode(contract, [function, arg]).decode()

    @transaction
    def Loop(self, ctx: Context) -> str:
        return ctx.stub.invoke_chaincode("desk", ["Loop"]).decode()

    @transaction
    def Catch(self, ctx: Context, key: str) -> str:
        try:
            ctx.stub.invoke_chaincode("ledger", ["Move", key, "x"])
        except ContractError as exc:
            return f"callee said {exc.status_code}: {exc}"
        return "moved"


CONTRACTS: dict[str, Contract] = {"ledger": Ledger(), "desk": Desk()}


@pytest.fixture
def state(tmp_path: Path) -> SqliteState:
    s = SqliteState.open(tmp_path / "s.db")
    s.apply_block(0, [])
    s.apply_block(1, [TxWrites(0, "t", 0, (Write("ledger", "bed-1", b"ward-a"),))])
    return s


@pytest.fixture
def tx(org1: Org, msps: MspManager) -> TxContext:
    creator = msps.deserialize(org1.signer("u").serialized_identity, at=NOW)
    return TxContext("ch", "tx1", 1_700_000_000_000, creator, contracts=CONTRACTS.get)


def call(state: SqliteState, tx: TxContext, *args: str) -> SimulationResult:
    return simulate(Desk(), "desk", [a.encode() for a in args], state, tx)


def namespaces(result: SimulationResult) -> dict[str, kv_rwset_pb2.KVRWSet]:
    txrw = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    return {ns.namespace: kv_rwset_pb2.KVRWSet.FromString(ns.rwset) for ns in txrw.ns_rwset}


def test_the_callee_reads_and_writes_its_own_namespace(state: SqliteState, tx: TxContext) -> None:
    result = call(state, tx, "Transfer", "bed-1", "ward-b")
    assert result.status == 200, result.message
    assert result.payload == b"bed-1:ward-a->ward-b"
    txrw = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    assert [ns.namespace for ns in txrw.ns_rwset] == ["desk", "ledger"]  # sorted, as Fabric
    by_ns = namespaces(result)
    assert [(r.key, r.version.block_num) for r in by_ns["ledger"].reads] == [("bed-1", 1)]
    assert [(w.key, w.value) for w in by_ns["ledger"].writes] == [("bed-1", b"ward-b")]
    assert [(w.key, w.value) for w in by_ns["desk"].writes] == [
        ("log-bed-1", b"bed-1:ward-a->ward-b")
    ]


def test_only_the_top_level_event_is_kept(state: SqliteState, tx: TxContext) -> None:
    result = call(state, tx, "Transfer", "bed-1", "ward-b")
    assert result.event is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    assert (event.chaincode_id, event.event_name) == ("desk", "Transferred")


def test_a_refusing_callee_refuses_the_whole_transaction(state: SqliteState, tx: TxContext) -> None:
    result = call(state, tx, "Transfer", "bed-9", "ward-b")
    assert (result.status, result.message) == (404, "bed-9 does not exist")
    assert result.rwset == b""


def test_the_caller_may_handle_a_refusal(state: SqliteState, tx: TxContext) -> None:
    result = call(state, tx, "Catch", "bed-9")
    assert result.payload == b"callee said 404: bed-9 does not exist"


def test_the_callee_knows_its_caller_and_a_client_is_not_a_contract(
    state: SqliteState, tx: TxContext
) -> None:
    direct = simulate(Ledger(), "ledger", [b"Move", b"bed-1", b"x"], state, tx)
    assert (direct.status, direct.message) == (403, "Move is for the desk, not None")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["Call", "nowhere", "X", "bed-1"], 404, "contract nowhere is not committed on channel ch"),
        (["Call", "ledger", "Peek", "bed-1"], 400, "Peek is evaluate-only and cannot write"),
        (["Loop"], 400, f"contract calls nest deeper than {MAX_CALL_DEPTH}"),
    ],
    ids=["unknown contract", "read-only callee cannot write", "a call loop stops"],
)
def test_bad_calls_are_refused(
    state: SqliteState, tx: TxContext, args: list[str], status: int, message: str
) -> None:
    result = call(state, tx, *args)
    assert (result.status, result.message) == (status, message)


def test_without_a_contract_table_no_call_reaches_another_contract(
    state: SqliteState, tx: TxContext
) -> None:
    alone = dataclasses.replace(tx, contracts=lambda name: None)
    result = call(state, alone, "Transfer", "bed-1", "ward-b")
    assert (result.status, result.message) == (
        404,
        "contract ledger is not committed on channel ch",
    )


def test_finding_the_called_contract_is_host_work_not_contract_work(
    state: SqliteState, tx: TxContext, tmp_path: Path
) -> None:
    """Loading a callee reads its package from disk: the contract sandbox (no file access)
    must not apply to that."""
    installed = tmp_path / "ledger.pkg"
    installed.write_text("ledger")

    def load(name: str) -> Contract | None:
        return CONTRACTS.get(installed.read_text()) if name == "ledger" else None

    result = call(state, dataclasses.replace(tx, contracts=load), "Transfer", "bed-1", "ward-b")
    assert (result.status, result.payload) == (200, b"bed-1:ward-a->ward-b")
