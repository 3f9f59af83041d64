"""The peer side of the shim protocol: an external chaincode's calls give the simulation a Python
contract's calls give, and a chaincode that breaks the protocol changes nothing."""

from __future__ import annotations

import dataclasses

import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from tests.ccaas_chaincode import InProcess, contract_behaviour
from tests.conftest import Org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.api import Context, Contract, transaction
from medalliance.contracts.external import ExternalContract
from medalliance.contracts.shim_handler import (
    PAGE_SIZE,
    Invocation,
    Msg,
    ShimProtocolError,
    register_message,
    registration_replies,
)
from medalliance.contracts.simulation import TxContext, simulate
from medalliance.contracts.stub import Stub
from medalliance.identity.msp import MspManager
from medalliance.samples.asset_transfer_basic import AssetTransferBasic

T = chaincode_shim_pb2.ChaincodeMessage.Type
NS = "basic"


class Emitting(Contract):
    name = "emitting"

    @transaction
    def Emit(self, ctx: Context, key: str) -> str:
        ctx.stub.put_state(key, b"v")
        ctx.stub.set_event("Made", key.encode())
        return key


@pytest.fixture
def tx(org1: Org, msps: MspManager) -> TxContext:
    return tx_context(org1, msps)


def as_service(contract: Contract) -> ExternalContract:
    return ExternalContract("basic_1.0:" + "a" * 64, InProcess(contract_behaviour(contract)))


def test_asset_transfer_as_a_service_simulates_exactly_as_the_python_port(
    tx: TxContext,
) -> None:
    """Each call, on the same committed state, gives byte-equal status, message, payload,
    read-write set and event whether the contract runs in the peer or as a service."""
    state = DictState()
    local, remote = AssetTransferBasic(), as_service(AssetTransferBasic())
    calls = [
        [b"InitLedger"],
        [b"CreateAsset", b"asset7", b"teal", b"3", b"Ana", b"90"],
        [b"CreateAsset", b"asset7", b"teal", b"3", b"Ana", b"90"],  # refused: exists
        [b"ReadAsset", b"asset7"],
        [b"UpdateAsset", b"asset7", b"pink", b"4", b"Ana", b"95"],
        [b"TransferAsset", b"asset7", b"Ben"],
        [b"AssetExists", b"asset7"],
        [b"GetAllAssets"],
        [b"DeleteAsset", b"asset7"],
        [b"ReadAsset", b"asset7"],  # refused: gone
        [b"UpdateAsset", b"asset1", b"x", b"NaN", b"y", b"1"],  # refused: bad int
    ]
    for args in calls:
        expected = simulate(local, NS, args, state, tx)
        got = simulate(remote, NS, args, state, tx)
        assert got == expected, args[0]
        if expected.status == 200:
            state.commit(expected)


def test_ranges_longer_than_a_page_are_read_as_the_python_port_reads_them(
    tx: TxContext,
) -> None:
    state = DictState()
    for i in range(PAGE_SIZE * 2 + 5):
        state.put(NS, f"asset{i:04}", f'{{"ID":"asset{i:04}","Size":{i}}}'.encode())
    expected = simulate(AssetTransferBasic(), NS, [b"GetAllAssets"], state, tx)
    got = simulate(as_service(AssetTransferBasic()), NS, [b"GetAllAssets"], state, tx)
    assert expected.status == 200
    assert got == expected


def test_an_event_set_by_the_chaincode_is_the_transactions_event(tx: TxContext) -> None:
    state = DictState()
    expected = simulate(Emitting(), NS, [b"Emit", b"k"], state, tx)
    got = simulate(as_service(Emitting()), NS, [b"Emit", b"k"], state, tx)
    assert got.event is not None
    assert got == expected


def transaction_of(stub: Stub) -> tuple[Invocation, Msg]:
    invocation = Invocation(stub, channel_id="alliance", tx_id="tx1")
    return invocation, invocation.start([b"F"], b"")


def message(kind: int, payload: object = b"", txid: str = "tx1") -> Msg:
    data = payload if isinstance(payload, bytes) else payload.SerializeToString()  # type: ignore[attr-defined]
    return Msg(type=kind, payload=data, txid=txid, channel_id="alliance")


def new_stub(state: DictState) -> Stub:
    return Stub(state, NS, tx_id="tx1", channel_id="alliance", timestamp_ms=0, transient={})


def put(key: str, **extra: str) -> chaincode_shim_pb2.PutState:
    return chaincode_shim_pb2.PutState(key=key, value=b"v", **extra)


@pytest.mark.parametrize(
    ("request_message", "refusal"),
    [
        pytest.param(
            message(T.PUT_STATE, put("k", collection="secret")),
            "collection secret is not defined for contract basic",
            id="a write to a collection the contract does not define is refused",
        ),
        pytest.param(
            message(
                T.GET_QUERY_RESULT,
                chaincode_shim_pb2.GetQueryResult(query="{}", collection="secret"),
            ),
            "rich queries and key-level endorsement policies of private data are not supported",
            id="a rich query of private data is refused",
        ),
        pytest.param(
            message(T.PUT_STATE, b"\xff\xff\xff"),
            "malformed PUT_STATE payload",
            id="a malformed payload is refused",
        ),
        pytest.param(
            message(T.PUT_STATE, put("")),
            "must not be empty",
            id="an empty key is refused as the stub refuses it",
        ),
        pytest.param(
            message(T.QUERY_STATE_NEXT, chaincode_shim_pb2.QueryStateNext(id="7")),
            "no open query has that id",
            id="another query's iterator id is refused",
        ),
        pytest.param(
            message(
                T.PUT_STATE_METADATA,
                chaincode_shim_pb2.PutStateMetadata(
                    key="k", metadata=chaincode_shim_pb2.StateMetadata(metakey="OWNER", value=b"x")
                ),
            ),
            "only the VALIDATION_PARAMETER metadata entry",
            id="metadata other than a key policy is refused",
        ),
        pytest.param(
            message(T.WRITE_BATCH_STATE, b""),
            "WRITE_BATCH_STATE is not supported here",
            id="a callback the peer does not serve is refused",
        ),
        pytest.param(
            message(
                T.INVOKE_CHAINCODE,
                chaincode_pb2.ChaincodeSpec(
                    chaincode_id=chaincode_pb2.ChaincodeID(name="other/otherchannel")
                ),
            ),
            "only call chaincodes of its own channel",
            id="a call into another channel is refused",
        ),
    ],
)
def test_a_refused_callback_is_answered_error_and_writes_nothing(
    request_message: Msg, refusal: str
) -> None:
    stub = new_stub(DictState())
    invocation, _ = transaction_of(stub)
    before = stub.ns_rwset().SerializeToString()
    (reply,) = invocation.receive(request_message)
    assert reply.type == T.ERROR
    assert refusal in reply.payload.decode()
    assert (reply.txid, reply.channel_id) == ("tx1", "alliance")
    assert stub.ns_rwset().SerializeToString() == before
    assert invocation.outcome is None  # the chaincode may still go on


def test_a_write_after_completed_is_refused_and_not_recorded() -> None:
    stub = new_stub(DictState())
    invocation, _ = transaction_of(stub)
    invocation.receive(message(T.COMPLETED, chaincode_shim_pb2.QueryResponse()))
    before = stub.ns_rwset().SerializeToString()
    (reply,) = invocation.receive(message(T.PUT_STATE, put("late")))
    assert reply.type == T.ERROR
    assert "already completed" in reply.payload.decode()
    assert stub.ns_rwset().SerializeToString() == before


def test_messages_of_another_transaction_are_not_applied() -> None:
    stub = new_stub(DictState())
    invocation, _ = transaction_of(stub)
    before = stub.ns_rwset().SerializeToString()
    assert invocation.receive(message(T.PUT_STATE, put("k"), txid="tx0")) == []
    assert invocation.receive(message(T.COMPLETED, b"", txid="tx0")) == []
    assert invocation.outcome is None
    assert stub.ns_rwset().SerializeToString() == before


def test_the_transaction_message_carries_what_the_shim_reads() -> None:
    stub = new_stub(DictState())
    invocation = Invocation(stub, channel_id="alliance", tx_id="tx1")
    first = invocation.start([b"ReadAsset", b"asset1"], b"")
    assert (first.type, first.txid, first.channel_id) == (T.TRANSACTION, "tx1", "alliance")
    assert list(chaincode_pb2.ChaincodeInput.FromString(first.payload).args) == [
        b"ReadAsset",
        b"asset1",
    ]


def test_registration_answers_registered_then_ready() -> None:
    replies = registration_replies(register_message("basic:" + "a" * 64), "basic:" + "a" * 64)
    assert [r.type for r in replies] == [T.REGISTERED, T.READY]


@pytest.mark.parametrize(
    ("first", "refusal"),
    [
        pytest.param(
            register_message("other:" + "b" * 64),
            "registered under another package id",
            id="a chaincode registering as another package is refused",
        ),
        pytest.param(
            Msg(type=T.PUT_STATE), "not REGISTER", id="a chaincode that does not register first"
        ),
        pytest.param(
            Msg(type=T.REGISTER, payload=b"\xff\xff"),
            "malformed REGISTER",
            id="a malformed registration is refused",
        ),
    ],
)
def test_registration_refusals(first: Msg, refusal: str) -> None:
    with pytest.raises(ShimProtocolError, match=refusal):
        registration_replies(first, "basic:" + "a" * 64)


def test_a_chaincode_refusal_keeps_its_status_and_message(tx: TxContext) -> None:
    got = simulate(as_service(AssetTransferBasic()), NS, [b"ReadAsset", b"nope"], DictState(), tx)
    assert (got.status, got.message, got.rwset) == (500, "the asset nope does not exist", b"")
    assert dataclasses.replace(got, message="") == dataclasses.replace(
        simulate(AssetTransferBasic(), NS, [b"ReadAsset", b"nope"], DictState(), tx), message=""
    )
