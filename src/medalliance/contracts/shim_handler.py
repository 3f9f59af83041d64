"""The peer's side of Fabric's chaincode shim protocol, without I/O: messages in, messages out.

An external chaincode (chaincode as a service) talks to the peer over one `protos.Chaincode/Connect`
stream of `ChaincodeMessage`s. This module owns what those messages mean; the gRPC edge
(node/chaincode_link.py) only carries them.

- Registration (`registration_replies`): the chaincode's first message must be REGISTER naming
  the installed package id; the peer answers REGISTERED then READY.
- One invocation (`Invocation`): the peer sends TRANSACTION (or INIT) with the arguments, tx id,
  channel and the client's SignedProposal (the shim reads the creator, timestamp and transient
  data from it). The chaincode's callbacks — GET_STATE, PUT_STATE, DEL_STATE, GET_STATE_BY_RANGE,
  QUERY_STATE_NEXT/CLOSE, GET_QUERY_RESULT, GET_HISTORY_FOR_KEY, GET_STATE_METADATA,
  PUT_STATE_METADATA, INVOKE_CHAINCODE — are applied to the transaction's `Stub`, the same
  simulator Python contracts use, so the read-write set, event and response are exactly what a
  Python contract making the same calls produces. Each callback is answered RESPONSE or ERROR
  with the same tx id and channel. COMPLETED (a `peer.Response` and an optional event) or ERROR
  ends the invocation; anything after that is refused and changes nothing.

Private data: GET_STATE, PUT_STATE, DEL_STATE and GET_STATE_BY_RANGE naming a collection, plus
GET_PRIVATE_DATA_HASH and PURGE_PRIVATE_DATA, go to the stub's private data calls (the same
collection rules, hashed sets and private write set as a Python contract's). The transient map
reaches the chaincode inside the SignedProposal, as in Fabric. Rich queries and key-level
policies of private data are refused with a message that says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf.message import DecodeError, Message

from medalliance.contracts.composite_key import MAX_RUNE, SEPARATOR
from medalliance.contracts.stub import Stub
from medalliance.errors import ContractError
from medalliance.ledger.state import VALIDATION_PARAMETER

M = TypeVar("M", bound=Message)
Msg: TypeAlias = chaincode_shim_pb2.ChaincodeMessage
T = chaincode_shim_pb2.ChaincodeMessage.Type

PAGE_SIZE = 100  # results per QueryResponse; the shim asks QUERY_STATE_NEXT for more
MAX_OPEN_ITERATORS = 64  # per invocation: a chaincode that never closes them cannot grow memory
ERROR_THRESHOLD = 400  # a COMPLETED response with a status at or above it is a refusal (Fabric)


class ShimProtocolError(Exception):
    """The chaincode broke the protocol; the message says how (never quotes its data)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an invocation ended: the chaincode's response, or why it failed."""

    status: int
    message: str
    payload: bytes = field(repr=False)
    event: chaincode_event_pb2.ChaincodeEvent | None = field(default=None, repr=False)


def register_message(package_id: str) -> Msg:
    """What a chaincode sends first (used by test chaincode servers)."""
    return Msg(
        type=T.REGISTER, payload=chaincode_pb2.ChaincodeID(name=package_id).SerializeToString()
    )


def registration_replies(message: Msg, package_id: str) -> list[Msg]:
    """REGISTERED and READY for a chaincode that registers as `package_id`; raises
    `ShimProtocolError` for any other first message or another package's id."""
    if message.type != T.REGISTER:
        raise ShimProtocolError(f"the first message was {_type_name(message.type)}, not REGISTER")
    chaincode_id = _parse(chaincode_pb2.ChaincodeID(), message.payload, "REGISTER")
    if chaincode_id.name != package_id:
        raise ShimProtocolError(
            f"it registered under another package id; start it with --chaincode-id {package_id}"
        )
    return [Msg(type=T.REGISTERED), Msg(type=T.READY)]


class Invocation:
    """One TRANSACTION of one chaincode on one stub: feed it the chaincode's messages."""

    def __init__(self, stub: Stub, *, channel_id: str, tx_id: str) -> None:
        self._stub = stub
        self._channel_id = channel_id
        self._tx_id = tx_id
        self._iterators: dict[str, tuple[Iterator[bytes], list[bytes]]] = {}
        self._next_iterator = 0
        self.outcome: Outcome | None = None

    def start(self, args: Sequence[bytes], signed_proposal: bytes, *, init: bool = False) -> Msg:
        """The TRANSACTION (or INIT) message that starts this invocation."""
        chaincode_input = chaincode_pb2.ChaincodeInput(args=list(args), is_init=init)
        return Msg(
            type=T.INIT if init else T.TRANSACTION,
            payload=chaincode_input.SerializeToString(),
            txid=self._tx_id,
            channel_id=self._channel_id,
            proposal=_signed_proposal(signed_proposal),
        )

    def receive(self, message: Msg) -> list[Msg]:
        """Apply one message of the chaincode; the replies to send back (possibly none)."""
        if message.type == T.KEEPALIVE:
            return []
        if message.txid != self._tx_id or message.channel_id != self._channel_id:
            # another transaction's message (a stale one after a deadline): not ours to apply
            return []
        if self.outcome is not None:
            return [self._error(message, "the transaction has already completed")]
        if message.type == T.COMPLETED:
            self.outcome = _completed(message)
            return []
        if message.type == T.ERROR:
            self.outcome = Outcome(500, _text(message.payload), b"")
            return []
        handler = _CALLBACKS.get(message.type)
        if handler is None:
            return [self._error(message, f"{_type_name(message.type)} is not supported here")]
        try:
            payload = handler(self, message.payload)
        except (ContractError, ShimProtocolError) as exc:
            return [self._error(message, str(exc))]
        return [
            Msg(type=T.RESPONSE, payload=payload, txid=message.txid, channel_id=message.channel_id)
        ]

    def fail(self, reason: str) -> None:
        """End the invocation without the chaincode (deadline, broken stream)."""
        if self.outcome is None:
            self.outcome = Outcome(500, reason, b"")

    # --- callbacks: payload in, RESPONSE payload out ---------------------------------------------

    def _get_state(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.GetState(), payload, "GET_STATE")
        if request.collection:
            return self._stub.get_private_data(request.collection, request.key) or b""
        return self._stub.get_state(request.key) or b""

    def _get_private_data_hash(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.GetState(), payload, "GET_PRIVATE_DATA_HASH")
        return self._stub.get_private_data_hash(request.collection, request.key) or b""

    def _put_state(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.PutState(), payload, "PUT_STATE")
        if request.collection:
            self._stub.put_private_data(request.collection, request.key, request.value)
        else:
            self._stub.put_state(request.key, request.value)
        return b""

    def _del_state(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.DelState(), payload, "DEL_STATE")
        if request.collection:
            self._stub.del_private_data(request.collection, request.key)
        else:
            self._stub.del_state(request.key)
        return b""

    def _purge_private_data(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.DelState(), payload, "PURGE_PRIVATE_DATA")
        self._stub.purge_private_data(request.collection, request.key)
        return b""

    def _get_state_by_range(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.GetStateByRange(), payload, "GET_STATE_BY_RANGE")
        start, end, collection = request.startKey, request.endKey, request.collection
        if start.startswith(SEPARATOR) and end == start + MAX_RUNE:
            # the shim's partial composite key query: the object type and attributes of `start`
            object_type, *attributes = start[1:-1].split(SEPARATOR)
            if collection:
                results = self._stub.get_private_data_by_partial_composite_key(
                    collection, object_type, attributes
                )
            else:
                results = self._stub.get_state_by_partial_composite_key(object_type, attributes)
        elif collection:
            results = self._stub.get_private_data_by_range(collection, start, end)
        else:
            results = self._stub.get_state_by_range(start, end)
        namespace = self._stub.namespace
        return self._open(
            kv_query_result_pb2.KV(namespace=namespace, key=k, value=v).SerializeToString()
            for k, v in results
        )

    def _get_query_result(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.GetQueryResult(), payload, "GET_QUERY_RESULT")
        _no_collection(request.collection)
        try:
            query = json.loads(request.query)
        except ValueError:
            raise ContractError("a rich query must be JSON (a CouchDB selector)", 400) from None
        namespace = self._stub.namespace
        rows = self._stub.get_query_result(query)
        return self._open(
            iter(
                [
                    kv_query_result_pb2.KV(namespace=namespace, key=k, value=v).SerializeToString()
                    for k, v in rows
                ]
            )
        )

    def _get_history_for_key(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.GetHistoryForKey(), payload, "GET_HISTORY_FOR_KEY")
        modifications = []
        for mod in self._stub.get_history_for_key(request.key):
            entry = kv_query_result_pb2.KeyModification(
                tx_id=mod.tx_id, value=mod.value, is_delete=mod.is_delete
            )
            entry.timestamp.FromMilliseconds(mod.timestamp_ms)
            modifications.append(entry.SerializeToString())
        return self._open(iter(modifications))

    def _query_state_next(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.QueryStateNext(), payload, "QUERY_STATE_NEXT")
        if request.id not in self._iterators:
            raise ShimProtocolError("no open query has that id")
        return self._page(request.id)

    def _query_state_close(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.QueryStateClose(), payload, "QUERY_STATE_CLOSE")
        self._iterators.pop(request.id, None)
        return bytes(chaincode_shim_pb2.QueryResponse(id=request.id).SerializeToString())

    def _get_state_metadata(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.GetStateMetadata(), payload, "GET_STATE_METADATA")
        _no_collection(request.collection)
        result = chaincode_shim_pb2.StateMetadataResult()
        policy = self._stub.get_state_validation_parameter(request.key)
        if policy is not None:
            result.entries.add(metakey=VALIDATION_PARAMETER, value=policy)
        return bytes(result.SerializeToString())

    def _put_state_metadata(self, payload: bytes) -> bytes:
        request = _parse(chaincode_shim_pb2.PutStateMetadata(), payload, "PUT_STATE_METADATA")
        _no_collection(request.collection)
        if request.metadata.metakey != VALIDATION_PARAMETER:
            raise ContractError(
                f"only the {VALIDATION_PARAMETER} metadata entry (a key's endorsement policy) "
                "can be set",
                400,
            )
        self._stub.set_state_validation_parameter(request.key, request.metadata.value)
        return b""

    def _invoke_chaincode(self, payload: bytes) -> bytes:
        spec = _parse(chaincode_pb2.ChaincodeSpec(), payload, "INVOKE_CHAINCODE")
        name, _, channel = spec.chaincode_id.name.partition("/")
        if channel and channel != self._channel_id:
            raise ContractError("a chaincode can only call chaincodes of its own channel", 400)
        result = self._stub.invoke_chaincode(name, list(spec.input.args))
        # The shim expects the callee's COMPLETED message, its payload a peer.Response.
        response = proposal_response_pb2.Response(status=200, payload=result)
        return bytes(
            Msg(
                type=T.COMPLETED,
                payload=response.SerializeToString(),
                txid=self._tx_id,
                channel_id=self._channel_id,
            ).SerializeToString()
        )

    # --- query iterators -------------------------------------------------------------------------

    def _open(self, results: Iterator[bytes]) -> bytes:
        if len(self._iterators) >= MAX_OPEN_ITERATORS:
            raise ContractError(
                f"more than {MAX_OPEN_ITERATORS} queries are open; close the ones you are done with",
                400,
            )
        self._next_iterator += 1
        iterator_id = str(self._next_iterator)
        self._iterators[iterator_id] = (results, [])
        return self._page(iterator_id)

    def _page(self, iterator_id: str) -> bytes:
        """Up to PAGE_SIZE results; one more is read ahead to know whether more follow (the
        range read it records is the one a Python contract reading that far records)."""
        results, ahead = self._iterators[iterator_id]
        page = ahead[:]
        ahead.clear()
        for item in results:
            if len(page) == PAGE_SIZE:
                ahead.append(item)
                break
            page.append(item)
        has_more = bool(ahead)
        if not has_more:
            del self._iterators[iterator_id]
        response = chaincode_shim_pb2.QueryResponse(has_more=has_more, id=iterator_id)
        for item in page:
            response.results.add(resultBytes=item)
        return bytes(response.SerializeToString())

    def _error(self, message: Msg, text: str) -> Msg:
        return Msg(
            type=T.ERROR, payload=text.encode(), txid=message.txid, channel_id=message.channel_id
        )


_CALLBACKS: dict[int, Callable[[Invocation, bytes], bytes]] = {
    T.GET_STATE: Invocation._get_state,
    T.GET_PRIVATE_DATA_HASH: Invocation._get_private_data_hash,
    T.PURGE_PRIVATE_DATA: Invocation._purge_private_data,
    T.PUT_STATE: Invocation._put_state,
    T.DEL_STATE: Invocation._del_state,
    T.GET_STATE_BY_RANGE: Invocation._get_state_by_range,
    T.GET_QUERY_RESULT: Invocation._get_query_result,
    T.GET_HISTORY_FOR_KEY: Invocation._get_history_for_key,
    T.QUERY_STATE_NEXT: Invocation._query_state_next,
    T.QUERY_STATE_CLOSE: Invocation._query_state_close,
    T.GET_STATE_METADATA: Invocation._get_state_metadata,
    T.PUT_STATE_METADATA: Invocation._put_state_metadata,
    T.INVOKE_CHAINCODE: Invocation._invoke_chaincode,
}


def _completed(message: Msg) -> Outcome:
    response = proposal_response_pb2.Response()
    try:
        response.ParseFromString(message.payload)
    except DecodeError:
        return Outcome(500, "the chaincode completed with a malformed response", b"")
    event = message.chaincode_event if message.HasField("chaincode_event") else None
    if event is not None and not event.event_name:
        event = None
    if response.status >= ERROR_THRESHOLD:
        return Outcome(response.status, response.message, b"")
    return Outcome(response.status or 200, response.message, bytes(response.payload), event)


def _signed_proposal(data: bytes) -> proposal_pb2.SignedProposal:
    signed = proposal_pb2.SignedProposal()
    signed.ParseFromString(data)
    return signed


def _no_collection(collection: str) -> None:
    if collection:
        raise ContractError(
            "rich queries and key-level endorsement policies of private data are not supported",
            400,
        )


def _parse(message: M, payload: bytes, what: str) -> M:
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise ShimProtocolError(f"malformed {what} payload") from None
    return message


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")[:512] or "the chaincode failed"


def _type_name(value: int) -> str:
    try:
        return str(T.Name(value))
    except ValueError:
        return f"message type {value}"
