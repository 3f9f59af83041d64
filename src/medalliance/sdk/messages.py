"""The signed requests a gateway client sends, and what it reads back (protocol doc §2, §3).

Pure: the nonce and the timestamp are arguments, nothing here touches the network, clock or
randomness, so the exact signed bytes can be checked in unit tests. Each builder signs exactly
the bytes Fabric's gateway verifies (protocol doc §2.2); those bytes are built once and never
re-serialised. Proposals come from `ledger.tx.new_signed_proposal`, the same builder our peers'
tests use, so client and server agree on the format by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from fabric_protos.peer.transaction_pb2 import TxValidationCode
from google.protobuf.message import DecodeError

from medalliance.errors import MalformedMessage
from medalliance.ledger.seek import seek_position
from medalliance.ledger.tx import MalformedTransaction, SigningIdentity, new_signed_proposal

NONCE_BYTES = 24  # Fabric's client nonce length (protocol doc §2.1)
# The Node client's "never stop" block: JavaScript's Number.MAX_SAFE_INTEGER (protocol doc §3.6).


@dataclass(frozen=True, slots=True)
class Proposal:
    """A signed proposal with the ids the gateway requests repeat beside it."""

    signed: proposal_pb2.SignedProposal = field(repr=False)
    transaction_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class PreparedTransaction:
    """What Endorse returned, read once: the envelope to sign, its channel and the result."""

    envelope: common_pb2.Envelope = field(repr=False)
    transaction_id: str
    channel_id: str
    result: bytes = field(repr=False)


def as_bytes(argument: str | bytes) -> bytes:
    """A contract argument as sent: strings as UTF-8, bytes unchanged (the Node client's rule)."""
    return argument.encode("utf-8") if isinstance(argument, str) else bytes(argument)


def new_proposal(
    signer: SigningIdentity,
    *,
    channel_id: str,
    chaincode_name: str,
    transaction_name: str,
    arguments: Sequence[str | bytes],
    transient: Mapping[str, bytes] | None,
    nonce: bytes,
    timestamp_ms: int,
) -> Proposal:
    """A proposal invoking `transaction_name` (already "contract:fn" when a contract is named).

    ChaincodeInput.args is `[transaction_name, *arguments]`; transient data goes into the
    proposal's TransientMap only, which Fabric strips before hashing, so it never reaches a block.
    """
    assert len(nonce) == NONCE_BYTES, "Fabric clients use 24-byte nonces"
    signed, tx_id = new_signed_proposal(
        signer,
        channel_id=channel_id,
        chaincode=chaincode_name,
        args=[transaction_name.encode("utf-8"), *map(as_bytes, arguments)],
        nonce=nonce,
        timestamp_ms=timestamp_ms,
        transient=transient,
    )
    return Proposal(signed, tx_id, channel_id)


def endorse_request(
    proposal: Proposal, endorsing_organizations: Sequence[str] | None
) -> gateway_pb2.EndorseRequest:
    return gateway_pb2.EndorseRequest(
        transaction_id=proposal.transaction_id,
        channel_id=proposal.channel_id,
        proposed_transaction=proposal.signed,
        endorsing_organizations=list(endorsing_organizations or ()),
    )


def evaluate_request(
    proposal: Proposal, target_organizations: Sequence[str] | None
) -> gateway_pb2.EvaluateRequest:
    return gateway_pb2.EvaluateRequest(
        transaction_id=proposal.transaction_id,
        channel_id=proposal.channel_id,
        proposed_transaction=proposal.signed,
        target_organizations=list(target_organizations or ()),
    )


def read_prepared_transaction(envelope: common_pb2.Envelope) -> PreparedTransaction:
    """Read an EndorseResponse's envelope: Payload.data → Transaction.actions[0] →
    ChaincodeActionPayload.action.proposal_response_payload → ProposalResponsePayload.extension
    → ChaincodeAction.response.payload is the result (protocol doc §3.1).

    Decodes only what the client uses (the channel header's ids and the result), each message
    once, from the envelope gRPC already parsed: no re-serialising, no signature header, no
    endorsement list (the peers check those when the transaction commits).
    Raises `MalformedTransaction` (an `InvalidArgument`) when the gateway sent something else.
    """
    payload = common_pb2.Payload()
    channel_header = common_pb2.ChannelHeader()
    transaction = transaction_pb2.Transaction()
    action_payload = transaction_pb2.ChaincodeActionPayload()
    response_payload = proposal_response_pb2.ProposalResponsePayload()
    action = proposal_pb2.ChaincodeAction()
    try:
        payload.ParseFromString(envelope.payload)
        if not payload.HasField("header"):
            raise _malformed("BAD_PAYLOAD", "the envelope payload has no header")
        channel_header.ParseFromString(payload.header.channel_header)
        transaction.ParseFromString(payload.data)
        if len(transaction.actions) != 1:
            raise _malformed(
                "NIL_TXACTION",
                f"an endorser transaction has exactly one action, not {len(transaction.actions)}",
            )
        action_payload.ParseFromString(transaction.actions[0].payload)
        response_payload.ParseFromString(action_payload.action.proposal_response_payload)
        action.ParseFromString(response_payload.extension)
    except DecodeError as exc:
        raise _malformed("BAD_PAYLOAD", f"malformed prepared transaction: {exc}") from exc
    return PreparedTransaction(
        envelope=envelope,
        transaction_id=str(channel_header.tx_id),
        channel_id=str(channel_header.channel_id),
        result=bytes(action.response.payload),
    )


def _malformed(code: str, message: str) -> MalformedTransaction:
    return MalformedTransaction(TxValidationCode.Value(code), message)


def read_endorse_response(
    proposal: Proposal, response: gateway_pb2.EndorseResponse
) -> PreparedTransaction:
    """The prepared transaction of an Endorse answer to `proposal`.

    The client signs what the gateway returns, so this checks that it is the transaction that
    was proposed (same tx id and channel). Raises `MalformedMessage` / `MalformedTransaction`
    (both `InvalidArgument`) otherwise.
    """
    if not response.HasField("prepared_transaction"):
        raise MalformedMessage("endorse response", "it holds no prepared transaction")
    prepared = read_prepared_transaction(response.prepared_transaction)
    if (prepared.transaction_id, prepared.channel_id) != (
        proposal.transaction_id,
        proposal.channel_id,
    ):
        raise MalformedMessage(
            "endorse response",
            f"it prepared transaction {prepared.transaction_id} on {prepared.channel_id!r}, "
            f"not the proposed {proposal.transaction_id} on {proposal.channel_id!r}",
        )
    return prepared


def submit_request(
    prepared: PreparedTransaction, signer: SigningIdentity
) -> gateway_pb2.SubmitRequest:
    """The Submit request: the prepared envelope signed over its payload bytes as received."""
    payload = bytes(prepared.envelope.payload)
    request = gateway_pb2.SubmitRequest(
        transaction_id=prepared.transaction_id, channel_id=prepared.channel_id
    )
    # Filled in place: an Envelope passed to the constructor would be copied, payload and all.
    request.prepared_transaction.payload = payload
    request.prepared_transaction.signature = signer.sign(payload)
    return request


def signed_commit_status_request(
    signer: SigningIdentity, *, transaction_id: str, channel_id: str
) -> gateway_pb2.SignedCommitStatusRequest:
    """CommitStatus's request; the signature covers the serialized `CommitStatusRequest`."""
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=transaction_id, channel_id=channel_id, identity=signer.serialized_identity
    ).SerializeToString()
    return gateway_pb2.SignedCommitStatusRequest(request=request, signature=signer.sign(request))


def signed_chaincode_events_request(
    signer: SigningIdentity,
    *,
    channel_id: str,
    chaincode_name: str,
    start_block: int | None,
    after_transaction_id: str | None,
) -> gateway_pb2.SignedChaincodeEventsRequest:
    """ChaincodeEvents's request from `start_block`, or from the next commit when None.

    With `after_transaction_id` the server skips events up to and including that transaction's
    (protocol doc §3.5): how a checkpoint resumes mid-block.
    """
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel_id,
        chaincode_id=chaincode_name,
        identity=signer.serialized_identity,
        start_position=seek_position(start_block),
        after_transaction_id=after_transaction_id or "",
    ).SerializeToString()
    return gateway_pb2.SignedChaincodeEventsRequest(request=request, signature=signer.sign(request))
