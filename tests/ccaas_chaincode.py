"""A chaincode side of Fabric's shim protocol for tests: Python contracts run as a service.

`RemoteStub` gives a contract the stub calls it makes (get/put/del state, ranges with
QUERY_STATE_NEXT, key policies, events, calls of other chaincodes) by sending the shim messages
a Fabric chaincode sends, so a Python contract run through it must leave exactly the read-write
set it leaves when simulated in the peer. `run_transaction` is one TRANSACTION of such a
chaincode; `ChaincodeServer` serves it over gRPC as `protos.Chaincode/Connect` (what
fabric-shim's server mode does), with hostile behaviours for the tests that need them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from cryptography import x509
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
    proposal_response_pb2,
)

from medalliance.contracts.api import ClientIdentity, Context, Contract
from medalliance.contracts.shim_handler import Invocation, Msg, Outcome, register_message
from medalliance.errors import ContractError
from medalliance.identity.client_id import client_id

T = chaincode_shim_pb2.ChaincodeMessage.Type
Call = Callable[[Msg], Msg]  # send a request to the peer, get its answer
# (the TRANSACTION message, call) -> the messages that end it (COMPLETED / ERROR, or worse)
Behaviour = Callable[[Msg, Call], list[Msg]]


class RemoteStub:
    """The calls a contract makes on its stub, carried to the peer as shim messages."""

    def __init__(self, first: Msg, call: Call) -> None:
        self._first = first
        self._call = call
        self.event: tuple[str, bytes] | None = None

    def _ask(self, kind: int, payload: Any) -> bytes:
        answer = self._call(
            Msg(
                type=kind,
                payload=payload.SerializeToString(),
                txid=self._first.txid,
                channel_id=self._first.channel_id,
            )
        )
        if answer.type == T.ERROR:
            raise ContractError(answer.payload.decode(), 500)
        return bytes(answer.payload)

    def get_state(self, key: str) -> bytes | None:
        return self._ask(T.GET_STATE, chaincode_shim_pb2.GetState(key=key)) or None

    def put_state(self, key: str, value: bytes) -> None:
        self._ask(T.PUT_STATE, chaincode_shim_pb2.PutState(key=key, value=value))

    def del_state(self, key: str) -> None:
        self._ask(T.DEL_STATE, chaincode_shim_pb2.DelState(key=key))

    def get_state_by_range(self, start_key: str, end_key: str) -> Iterator[tuple[str, bytes]]:
        return self._pages(chaincode_shim_pb2.GetStateByRange(startKey=start_key, endKey=end_key))

    def _pages(self, request: chaincode_shim_pb2.GetStateByRange) -> Iterator[tuple[str, bytes]]:
        response = chaincode_shim_pb2.QueryResponse.FromString(
            self._ask(T.GET_STATE_BY_RANGE, request)
        )
        while True:
            for item in response.results:
                kv = kv_query_result_pb2.KV.FromString(item.resultBytes)
                yield kv.key, kv.value
            if not response.has_more:
                return
            response = chaincode_shim_pb2.QueryResponse.FromString(
                self._ask(T.QUERY_STATE_NEXT, chaincode_shim_pb2.QueryStateNext(id=response.id))
            )

    # --- private data: the same messages with a collection, as fabric-shim sends them ----------

    def get_private_data(self, collection: str, key: str) -> bytes | None:
        request = chaincode_shim_pb2.GetState(key=key, collection=collection)
        return self._ask(T.GET_STATE, request) or None

    def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        request = chaincode_shim_pb2.GetState(key=key, collection=collection)
        return self._ask(T.GET_PRIVATE_DATA_HASH, request) or None

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        request = chaincode_shim_pb2.PutState(key=key, value=value, collection=collection)
        self._ask(T.PUT_STATE, request)

    def del_private_data(self, collection: str, key: str) -> None:
        self._ask(T.DEL_STATE, chaincode_shim_pb2.DelState(key=key, collection=collection))

    def purge_private_data(self, collection: str, key: str) -> None:
        request = chaincode_shim_pb2.DelState(key=key, collection=collection)
        self._ask(T.PURGE_PRIVATE_DATA, request)

    def get_private_data_by_range(
        self, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, bytes]]:
        return self._pages(
            chaincode_shim_pb2.GetStateByRange(
                startKey=start_key, endKey=end_key, collection=collection
            )
        )

    def get_transient(self) -> dict[str, bytes]:
        """The transient map, read from the SignedProposal as fabric-shim reads it."""
        proposal = proposal_pb2.Proposal.FromString(self._first.proposal.proposal_bytes)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        return dict(payload.TransientMap)

    def set_event(self, name: str, payload: bytes) -> None:
        self.event = (name, payload)

    def invoke_chaincode(self, name: str, args: list[str | bytes]) -> bytes:
        spec = chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name=name),
            input=chaincode_pb2.ChaincodeInput(
                args=[a.encode() if isinstance(a, str) else a for a in args]
            ),
        )
        completed = Msg.FromString(self._ask(T.INVOKE_CHAINCODE, spec))
        return bytes(proposal_response_pb2.Response.FromString(completed.payload).payload)


def contract_behaviour(contract: Contract, *, peer_msp_id: str = "") -> Behaviour:
    """A chaincode that runs `contract`'s functions, as fabric-contract-api runs a contract;
    `peer_msp_id` is its CORE_PEER_LOCALMSPID (fabric-shim's GetMSPID)."""

    def run(first: Msg, call: Call) -> list[Msg]:
        chaincode_input = chaincode_pb2.ChaincodeInput.FromString(first.payload)
        function, *args = list(chaincode_input.args)
        stub = RemoteStub(first, call)
        ctx = Context(
            stub=stub,  # type: ignore[arg-type]
            client=_client(first),
            channel_id=first.channel_id,
            tx_id=first.txid,
            tx_timestamp_ms=0,
            channel_orgs=(),
            transient={},
            peer_msp_id=peer_msp_id,
        )
        try:
            payload = contract.invoke(ctx, function.decode(), args)
            response = proposal_response_pb2.Response(status=200, payload=payload)
        except ContractError as exc:
            response = proposal_response_pb2.Response(status=exc.status_code, message=str(exc))
        done = Msg(
            type=T.COMPLETED,
            payload=response.SerializeToString(),
            txid=first.txid,
            channel_id=first.channel_id,
        )
        if stub.event is not None:
            done.chaincode_event.event_name, done.chaincode_event.payload = stub.event
        return [done]

    return run


def _client(first: Msg) -> ClientIdentity:
    """The caller as fabric-contract-api's ClientIdentity reads it from the SignedProposal."""
    if not first.proposal.proposal_bytes:
        return ClientIdentity("", None, None, False, "")
    proposal = proposal_pb2.Proposal.FromString(first.proposal.proposal_bytes)
    header = common_pb2.SignatureHeader.FromString(
        common_pb2.Header.FromString(proposal.header).signature_header
    )
    creator = identities_pb2.SerializedIdentity.FromString(header.creator)
    certificate = x509.load_pem_x509_certificate(creator.id_bytes)
    return ClientIdentity(creator.mspid, None, None, False, "", client_id(certificate))


class InProcess:
    """An `Executor` that runs a behaviour in this thread: the shim core without gRPC."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._behaviour = behaviour
        self.late_replies: list[Msg] = []  # answers to what the chaincode sent after it ended

    def execute(self, invocation: Invocation, first: Msg) -> Outcome:
        def call(message: Msg) -> Msg:
            (reply,) = invocation.receive(message)
            return reply

        for message in self._behaviour(first, call):
            self.late_replies.extend(invocation.receive(message))
        assert invocation.outcome is not None
        return invocation.outcome


class ChaincodeServer:
    """A gRPC chaincode server on 127.0.0.1 (fabric-shim's server mode, in Python).

    It registers as `package_id` (or `register_as`), then runs `behaviour` for each
    TRANSACTION. `garbage` sends bytes that are no ChaincodeMessage instead of registering.
    """

    def __init__(
        self,
        package_id: str,
        behaviour: Behaviour,
        *,
        register_as: str | None = None,
        garbage: bool = False,
        port: int = 0,
    ) -> None:
        self.package_id = package_id
        self.behaviour = behaviour
        self._register_as = register_as or package_id
        self._garbage = garbage
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.stream_stream_rpc_method_handler(
            self._connect,
            request_deserializer=Msg.FromString,
            response_serializer=lambda data: data,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("protos.Chaincode", {"Connect": handler}),)
        )
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.address = f"127.0.0.1:{self.port}"
        self.transactions = 0

    def start(self) -> ChaincodeServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait()

    def _connect(self, requests: Iterator[Msg], context: grpc.ServicerContext) -> Iterator[bytes]:
        out: queue.Queue[bytes | None] = queue.Queue()
        answers: dict[str, queue.Queue[Msg]] = {}
        if self._garbage:
            yield b"\xff\xff\xff\xff not a chaincode message"
            return
        out.put(register_message(self._register_as).SerializeToString())

        def transaction(first: Msg) -> None:
            answers[first.txid] = inbox = queue.Queue()

            def call(message: Msg) -> Msg:
                out.put(message.SerializeToString())
                return inbox.get(timeout=30)

            for message in self.behaviour(first, call):
                out.put(message.SerializeToString())

        def pump() -> None:
            try:
                for message in requests:
                    if message.type in (T.TRANSACTION, T.INIT):
                        self.transactions += 1
                        threading.Thread(target=transaction, args=(message,), daemon=True).start()
                    elif message.txid in answers:
                        answers[message.txid].put(message)
            except grpc.RpcError:
                pass
            finally:
                out.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            data = out.get()
            if data is None:
                return
            yield data
