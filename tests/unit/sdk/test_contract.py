"""Contracts and networks drive the gateway stubs in Fabric's order, with typed failures.

The stubs are in-process doubles that answer with messages built by `ledger.tx`; no server and
no socket is involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2, proposal_response_pb2
from tests.conftest import Org

from medalliance.errors import Conflict, DeadlineExceeded, InvalidArgument, Unavailable
from medalliance.identity import Signer
from medalliance.ledger.tx import (
    new_proposal_response,
    new_transaction_payload,
    parse_envelope,
    parse_signed_proposal,
)
from medalliance.sdk import (
    CommitError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    InMemoryCheckpointer,
    Network,
    Status,
    SubmitError,
    connect,
)
from medalliance.sdk.client import Client


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"failed: {self._code.name}"

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ()


class FakeCall:
    def __init__(self, responses: list[object]) -> None:
        self._responses = iter(responses)
        self.cancelled = False

    def __iter__(self) -> Iterator[object]:
        return self

    def __next__(self) -> object:
        return next(self._responses)

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class GatewayDouble:
    """Answers like a gateway peer whose contract returns `result` and commits with `code`."""

    endorser: Signer
    result: bytes = b"result"
    code: int = 0
    fail: dict[str, grpc.StatusCode] = field(default_factory=dict)
    calls: list[tuple[str, object, float | None]] = field(default_factory=list)

    def _record(self, method: str, request: object, timeout: float | None) -> None:
        self.calls.append((method, request, timeout))
        if method in self.fail:
            raise FakeRpcError(self.fail[method])

    def Endorse(self, request: object, timeout: float | None = None) -> object:
        self._record("Endorse", request, timeout)
        view = parse_signed_proposal(request.proposed_transaction)  # type: ignore[attr-defined]
        response = new_proposal_response(
            view,
            self.endorser,
            chaincode_version="1",
            status=200,
            message="",
            payload=self.result,
            rwset=b"",
            event=None,
        )
        payload = new_transaction_payload(view, [response])
        return gateway_pb2.EndorseResponse(
            prepared_transaction=common_pb2.Envelope(payload=payload)
        )

    def Submit(self, request: object, timeout: float | None = None) -> object:
        self._record("Submit", request, timeout)
        return gateway_pb2.SubmitResponse()

    def CommitStatus(self, request: object, timeout: float | None = None) -> object:
        self._record("CommitStatus", request, timeout)
        return gateway_pb2.CommitStatusResponse(result=self.code, block_number=5)

    def Evaluate(self, request: object, timeout: float | None = None) -> object:
        self._record("Evaluate", request, timeout)
        result = proposal_response_pb2.Response(status=200, payload=self.result)
        return gateway_pb2.EvaluateResponse(result=result)

    def ChaincodeEvents(self, request: object, timeout: float | None = None) -> object:
        self._record("ChaincodeEvents", request, timeout)
        event = chaincode_event_pb2.ChaincodeEvent(chaincode_id="basic", tx_id="t9", event_name="E")
        return FakeCall([gateway_pb2.ChaincodeEventsResponse(block_number=9, events=[event])])


@dataclass
class DeliverDouble:
    seeks: list[common_pb2.Envelope] = field(default_factory=list)
    requests: list[Iterator[object]] = field(default_factory=list)

    def Deliver(self, requests: Iterator[object], timeout: float | None = None) -> object:
        self.seeks.append(next(requests))  # type: ignore[arg-type]
        self.requests.append(requests)
        block = common_pb2.Block(header=common_pb2.BlockHeader(number=3))
        return FakeCall([events_pb2.DeliverResponse(block=block)])


@pytest.fixture(scope="module")
def alice(org1: Org) -> Signer:
    return org1.signer("alice")


@pytest.fixture(scope="module")
def peer(org2: Org) -> Signer:
    return org2.signer("peer0", ou="peer")


@pytest.fixture
def gateway(peer: Signer) -> GatewayDouble:
    return GatewayDouble(peer)


@pytest.fixture
def deliver() -> DeliverDouble:
    return DeliverDouble()


@pytest.fixture
def network(gateway: GatewayDouble, deliver: DeliverDouble, alice: Signer) -> Network:
    client = Client(gateway=gateway, deliver=deliver, signer=alice, timeout_seconds=30.0)
    return Network(client, "mychannel")


def test_submit_endorses_submits_and_waits_for_the_commit(
    network: Network, gateway: GatewayDouble, alice: Signer
) -> None:
    result = network.get_contract("basic").submit_transaction("CreateAsset", "asset1", b"\x01")
    assert result == b"result"
    assert [method for method, _, _ in gateway.calls] == ["Endorse", "Submit", "CommitStatus"]
    endorse, submit, commit = (request for _, request, _ in gateway.calls)
    tx_id = endorse.transaction_id  # type: ignore[attr-defined]
    view = parse_signed_proposal(endorse.proposed_transaction)  # type: ignore[attr-defined]
    assert view.args == (b"CreateAsset", b"asset1", b"\x01")
    assert submit.transaction_id == tx_id  # type: ignore[attr-defined]
    envelope = submit.prepared_transaction  # type: ignore[attr-defined]
    assert parse_envelope(envelope.SerializeToString()).tx_id == tx_id
    assert envelope.signature
    status_request = gateway_pb2.CommitStatusRequest.FromString(commit.request)  # type: ignore[attr-defined]
    assert (status_request.transaction_id, status_request.identity) == (
        tx_id,
        alice.serialized_identity,
    )


def test_a_named_contract_qualifies_the_function(network: Network, gateway: GatewayDouble) -> None:
    network.get_contract("basic", "assets").evaluate_transaction("ReadAsset", "asset1")
    request = gateway.calls[0][1]
    view = parse_signed_proposal(request.proposed_transaction)  # type: ignore[attr-defined]
    assert view.args == (b"assets:ReadAsset", b"asset1")


def test_options_reach_the_requests(network: Network, gateway: GatewayDouble) -> None:
    contract = network.get_contract("basic")
    contract.submit(
        "Fn",
        arguments=["a"],
        transient={"k": b"v"},
        endorsing_organizations=["Org1MSP"],
        timeout=3.0,
    )
    contract.evaluate("Fn", target_organizations=["Org2MSP"])
    endorse, evaluate = gateway.calls[0][1], gateway.calls[3][1]
    assert parse_signed_proposal(endorse.proposed_transaction).transient == {"k": b"v"}  # type: ignore[attr-defined]
    assert list(endorse.endorsing_organizations) == ["Org1MSP"]  # type: ignore[attr-defined]
    assert list(evaluate.target_organizations) == ["Org2MSP"]  # type: ignore[attr-defined]
    assert [timeout for _, _, timeout in gateway.calls] == [3.0, 3.0, 3.0, 30.0]


def test_submit_async_returns_before_the_commit(network: Network, gateway: GatewayDouble) -> None:
    submitted = network.get_contract("basic").submit_async("Fn", arguments=["a"])
    assert [method for method, _, _ in gateway.calls] == ["Endorse", "Submit"]
    assert submitted.result == b"result"
    assert "result" not in repr(submitted)
    status = submitted.get_status(timeout=1.5)
    assert status == Status(0, 5, submitted.transaction_id, True)
    assert gateway.calls[-1][2] == 1.5


def test_an_invalid_commit_raises_commit_error(network: Network, gateway: GatewayDouble) -> None:
    gateway.code = 11
    with pytest.raises(CommitError) as caught:
        network.get_contract("basic").submit_transaction("Fn")
    tx_id = gateway.calls[0][1].transaction_id  # type: ignore[attr-defined]
    assert caught.value.transaction_id == tx_id
    assert str(caught.value) == (
        f"transaction {tx_id} failed to commit with status code 11 (MVCC_READ_CONFLICT)"
    )


@dataclass
class ReplayingGateway(GatewayDouble):
    """Hostile gateway: answers every Endorse with the first prepared transaction it made."""

    first: object | None = None

    def Endorse(self, request: object, timeout: float | None = None) -> object:
        answer = super().Endorse(request, timeout)
        self.first = self.first or answer
        return self.first


def test_a_replayed_prepared_transaction_is_never_signed_or_submitted(
    alice: Signer, peer: Signer
) -> None:
    gateway = ReplayingGateway(peer)
    client = Client(gateway=gateway, deliver=DeliverDouble(), signer=alice, timeout_seconds=30.0)
    contract = Network(client, "mychannel").get_contract("basic")
    contract.submit_transaction("CreateAsset", "asset1")
    with pytest.raises(InvalidArgument, match="not the proposed"):
        contract.submit_transaction("CreateAsset", "asset2")
    assert [method for method, _, _ in gateway.calls] == [
        "Endorse",
        "Submit",
        "CommitStatus",
        "Endorse",
    ]


@pytest.mark.parametrize(
    ("method", "code", "error", "category"),
    [
        pytest.param("Endorse", grpc.StatusCode.ABORTED, EndorseError, Conflict, id="endorse"),
        pytest.param("Submit", grpc.StatusCode.UNAVAILABLE, SubmitError, Unavailable, id="submit"),
        pytest.param(
            "CommitStatus",
            grpc.StatusCode.DEADLINE_EXCEEDED,
            CommitStatusError,
            DeadlineExceeded,
            id="commit status",
        ),
    ],
)
def test_each_step_fails_with_its_own_error(
    network: Network,
    gateway: GatewayDouble,
    method: str,
    code: grpc.StatusCode,
    error: type[GatewayError],
    category: type[Exception],
) -> None:
    gateway.fail[method] = code
    with pytest.raises(error) as caught:
        network.get_contract("basic").submit_transaction("Fn")
    assert isinstance(caught.value, category)
    assert caught.value.code == code
    assert caught.value.transaction_id == gateway.calls[0][1].transaction_id  # type: ignore[attr-defined]


def test_an_evaluate_failure_is_a_gateway_error(network: Network, gateway: GatewayDouble) -> None:
    gateway.fail["Evaluate"] = grpc.StatusCode.UNKNOWN
    with pytest.raises(GatewayError) as caught:
        network.get_contract("basic").evaluate_transaction("ReadAsset", "nope")
    assert not isinstance(caught.value, EndorseError)
    assert isinstance(caught.value, Conflict)


def test_chaincode_events_resume_from_a_checkpoint(
    network: Network, gateway: GatewayDouble
) -> None:
    checkpoint = InMemoryCheckpointer()
    checkpoint.checkpoint_transaction(9, "t8")
    with network.get_chaincode_events("basic", start_block=0, checkpoint=checkpoint) as events:
        event = next(events)
        checkpoint.checkpoint_chaincode_event(event)
    signed = gateway.calls[0][1]
    request = gateway_pb2.ChaincodeEventsRequest.FromString(signed.request)  # type: ignore[attr-defined]
    assert request.start_position.specified.number == 9
    assert request.after_transaction_id == "t8"
    assert (checkpoint.block_number, checkpoint.transaction_id) == (9, "t9")
    assert gateway.calls[0][2] is None  # an event stream has no deadline unless asked


def test_block_events_send_one_seek_and_release_the_request_side_on_close(
    network: Network, deliver: DeliverDouble
) -> None:
    with network.get_block_events(start_block=3) as blocks:
        assert next(blocks).header.number == 3
    (seek,) = deliver.seeks
    payload = common_pb2.Payload.FromString(seek.payload)
    assert ab_pb2.SeekInfo.FromString(payload.data).start.specified.number == 3
    assert list(deliver.requests[0]) == []  # closed: the request iterator ends


def test_inconsistent_connect_options_are_refused(alice: Signer) -> None:
    with pytest.raises(InvalidArgument, match="either"):
        connect(signer=alice)
    with pytest.raises(InvalidArgument, match="timeout"):
        connect("localhost:7051", signer=alice, timeout=0)
    with pytest.raises(InvalidArgument, match="both"):
        connect("localhost:7051", signer=alice, tls_root_cert=b"ca", tls_client_cert=b"c")
    with pytest.raises(InvalidArgument, match="tls_root_cert"):
        connect("localhost:7051", signer=alice, tls_client_cert=b"c", tls_client_key=b"k")
