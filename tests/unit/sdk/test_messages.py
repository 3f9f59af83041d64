"""The exact bytes the SDK signs and sends, and what it reads back (protocol doc §2, §3)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, transaction_pb2
from tests.conftest import Org

from medalliance.errors import InvalidArgument, MalformedMessage
from medalliance.identity import Signer, verify_signature
from medalliance.ledger.seek import MAX_BLOCK_NUMBER, seek_position
from medalliance.ledger.seek import new_seek_envelope as seek_envelope
from medalliance.ledger.tx import (
    new_proposal_response,
    new_transaction_payload,
    parse_envelope,
    parse_signed_proposal,
)
from medalliance.sdk.messages import (
    Proposal,
    as_bytes,
    endorse_request,
    evaluate_request,
    new_proposal,
    read_endorse_response,
    signed_chaincode_events_request,
    signed_commit_status_request,
    submit_request,
)

NONCE = bytes(range(24))
NOW_MS = 1_795_000_000_123


@pytest.fixture(scope="module")
def alice(org1: Org) -> Signer:
    return org1.signer("alice")


@pytest.fixture(scope="module")
def peer(org2: Org) -> Signer:
    return org2.signer("peer0", ou="peer")


def verifies(signer: Signer, signature: bytes, message: bytes) -> bool:
    key = x509.load_pem_x509_certificate(signer.cert_pem).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return verify_signature(key, signature, message)


def proposal_of(
    signer: Signer, transient: dict[str, bytes] | None = None, channel_id: str = "mychannel"
) -> Proposal:
    return new_proposal(
        signer,
        channel_id=channel_id,
        chaincode_name="basic",
        transaction_name="CreateAsset",
        arguments=["asset1", "blue", b"\x00\xffraw"],
        transient=transient,
        nonce=NONCE,
        timestamp_ms=NOW_MS,
    )


def prepared_envelope(proposal: Proposal, endorser: Signer, result: bytes) -> common_pb2.Envelope:
    view = parse_signed_proposal(proposal.signed)
    response = new_proposal_response(
        view,
        endorser,
        chaincode_version="1.0",
        status=200,
        message="",
        payload=result,
        rwset=b"",
        event=None,
    )
    return common_pb2.Envelope(payload=new_transaction_payload(view, [response]))


# --- proposals -----------------------------------------------------------------------------------


def test_the_tx_id_is_sha256_of_nonce_and_creator(alice: Signer) -> None:
    proposal = proposal_of(alice)
    view = parse_signed_proposal(proposal.signed)
    assert view.header.nonce == NONCE
    assert view.header.creator == alice.serialized_identity
    expected = hashlib.sha256(NONCE + alice.serialized_identity).hexdigest()
    assert proposal.transaction_id == view.tx_id == expected


def test_the_proposal_carries_fabrics_header_and_chaincode_spec(alice: Signer) -> None:
    proposal = proposal_of(alice)
    view = parse_signed_proposal(proposal.signed)
    assert view.header.header_type == common_pb2.HeaderType.Value("ENDORSER_TRANSACTION")
    assert (view.channel_id, view.header.chaincode_name, view.chaincode_name) == (
        "mychannel",
        "basic",
        "basic",
    )
    assert view.header.epoch == 0
    assert view.header.timestamp_ms == NOW_MS
    assert view.args == (b"CreateAsset", b"asset1", b"blue", b"\x00\xffraw")
    cpp = proposal_pb2.ChaincodeProposalPayload()
    cpp.ParseFromString(proposal_pb2.Proposal.FromString(proposal.signed.proposal_bytes).payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input).chaincode_spec
    assert spec.type == chaincode_pb2.ChaincodeSpec.Type.Value("NODE") == 2


def test_the_signature_covers_the_proposal_bytes(alice: Signer) -> None:
    signed = proposal_of(alice).signed
    assert verifies(alice, signed.signature, signed.proposal_bytes)
    assert not verifies(alice, signed.signature, signed.proposal_bytes + b"x")


def test_transient_data_is_in_the_proposal_but_not_in_what_is_hashed(alice: Signer) -> None:
    proposal = proposal_of(alice, transient={"price": b"secret-300"})
    view = parse_signed_proposal(proposal.signed)
    assert view.transient == {"price": b"secret-300"}
    assert b"secret-300" in proposal.signed.proposal_bytes
    assert b"secret-300" not in view.payload_for_tx
    plain = parse_signed_proposal(proposal_of(alice).signed)
    assert view.payload_for_tx == plain.payload_for_tx
    assert view.proposal_hash == plain.proposal_hash


def test_each_nonce_gives_a_new_transaction(alice: Signer) -> None:
    first = proposal_of(alice)
    second = new_proposal(
        alice,
        channel_id="mychannel",
        chaincode_name="basic",
        transaction_name="CreateAsset",
        arguments=[],
        transient=None,
        nonce=b"\x01" * 24,
        timestamp_ms=NOW_MS,
    )
    assert first.transaction_id != second.transaction_id


def test_endorse_and_evaluate_requests_repeat_the_ids(alice: Signer) -> None:
    proposal = proposal_of(alice)
    endorse = endorse_request(proposal, ["Org1MSP", "Org2MSP"])
    assert (endorse.transaction_id, endorse.channel_id) == (proposal.transaction_id, "mychannel")
    assert endorse.proposed_transaction == proposal.signed
    assert list(endorse.endorsing_organizations) == ["Org1MSP", "Org2MSP"]
    evaluate = evaluate_request(proposal, None)
    assert (evaluate.transaction_id, evaluate.channel_id) == (proposal.transaction_id, "mychannel")
    assert evaluate.proposed_transaction == proposal.signed
    assert list(evaluate.target_organizations) == []


@pytest.mark.parametrize(
    ("argument", "sent"),
    [
        pytest.param("blue", b"blue", id="a string is sent as UTF-8"),
        pytest.param("就诊号", "就诊号".encode(), id="non-ASCII text is sent as UTF-8"),
        pytest.param(b"\x00\xff", b"\x00\xff", id="bytes are sent unchanged"),
    ],
)
def test_arguments_are_sent_as_bytes(argument: str | bytes, sent: bytes) -> None:
    assert as_bytes(argument) == sent


# --- the prepared transaction --------------------------------------------------------------------


def test_the_result_is_read_from_the_prepared_transaction(alice: Signer, peer: Signer) -> None:
    proposal = proposal_of(alice, transient={"k": b"v"})
    envelope = prepared_envelope(proposal, peer, b'{"ID":"asset1"}')
    response = gateway_pb2.EndorseResponse(prepared_transaction=envelope)
    prepared = read_endorse_response(proposal, response)
    assert prepared.result == b'{"ID":"asset1"}'
    assert (prepared.transaction_id, prepared.channel_id) == (proposal.transaction_id, "mychannel")


def test_an_empty_result_is_empty_bytes(alice: Signer, peer: Signer) -> None:
    proposal = proposal_of(alice)
    response = gateway_pb2.EndorseResponse(
        prepared_transaction=prepared_envelope(proposal, peer, b"")
    )
    assert read_endorse_response(proposal, response).result == b""


def test_a_response_without_a_prepared_transaction_is_refused(alice: Signer) -> None:
    with pytest.raises(MalformedMessage, match="no prepared transaction"):
        read_endorse_response(proposal_of(alice), gateway_pb2.EndorseResponse())


def test_a_prepared_transaction_for_another_proposal_is_not_signed(
    alice: Signer, peer: Signer
) -> None:
    other = prepared_envelope(proposal_of(alice, channel_id="otherchannel"), peer, b"r")
    with pytest.raises(MalformedMessage, match="not the proposed"):
        read_endorse_response(
            proposal_of(alice), gateway_pb2.EndorseResponse(prepared_transaction=other)
        )


def test_a_garbled_prepared_transaction_is_a_typed_error(alice: Signer) -> None:
    garbled = common_pb2.Envelope(payload=b"\xff\xff\xff")
    with pytest.raises(InvalidArgument):
        read_endorse_response(
            proposal_of(alice), gateway_pb2.EndorseResponse(prepared_transaction=garbled)
        )


def test_the_lean_reader_agrees_with_the_ledger_parser(alice: Signer, peer: Signer) -> None:
    """The client decodes only the ids and the result; they are what a peer's parser reads."""
    proposal = proposal_of(alice, transient={"k": b"v"})
    envelope = prepared_envelope(proposal, peer, b'{"ID":"asset1","Owner":"Ana"}')
    prepared = read_endorse_response(
        proposal, gateway_pb2.EndorseResponse(prepared_transaction=envelope)
    )
    view = parse_envelope(envelope.SerializeToString())
    assert (prepared.transaction_id, prepared.channel_id) == (view.tx_id, view.header.channel_id)
    assert prepared.result == view.endorser_tx().response_payload
    assert prepared.envelope.payload == envelope.payload  # signed as received


def test_an_earlier_prepared_transaction_is_not_signed_again(alice: Signer, peer: Signer) -> None:
    """Hostile gateway: it answers a new proposal with the prepared transaction of an earlier
    one (same channel and chaincode), hoping the client signs a replay."""
    earlier = new_proposal(
        alice,
        channel_id="mychannel",
        chaincode_name="basic",
        transaction_name="CreateAsset",
        arguments=["asset1", "blue", b"\x00\xffraw"],
        transient=None,
        nonce=bytes(24),
        timestamp_ms=NOW_MS - 1000,
    )
    replayed = prepared_envelope(earlier, peer, b"r")
    with pytest.raises(MalformedMessage, match="not the proposed"):
        read_endorse_response(
            proposal_of(alice), gateway_pb2.EndorseResponse(prepared_transaction=replayed)
        )


def test_a_prepared_transaction_with_a_second_action_is_refused(
    alice: Signer, peer: Signer
) -> None:
    """Hostile gateway: it appends another action to the transaction the client signs."""
    proposal = proposal_of(alice)
    payload = common_pb2.Payload.FromString(prepared_envelope(proposal, peer, b"r").payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    transaction.actions.append(transaction.actions[0])
    payload.data = transaction.SerializeToString()
    smuggled = common_pb2.Envelope(payload=payload.SerializeToString())
    with pytest.raises(InvalidArgument, match="exactly one action"):
        read_endorse_response(proposal, gateway_pb2.EndorseResponse(prepared_transaction=smuggled))


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # nothing at all
        common_pb2.Payload(data=b"x").SerializeToString(),  # no header
        common_pb2.Payload(
            header=common_pb2.Header(channel_header=b"\xff\xff"), data=b""
        ).SerializeToString(),
    ],
)
def test_a_prepared_transaction_without_its_parts_is_a_typed_error(
    alice: Signer, payload: bytes
) -> None:
    envelope = common_pb2.Envelope(payload=payload)
    with pytest.raises(InvalidArgument):
        read_endorse_response(
            proposal_of(alice), gateway_pb2.EndorseResponse(prepared_transaction=envelope)
        )


def test_submit_signs_the_prepared_payload_bytes_as_received(alice: Signer, peer: Signer) -> None:
    proposal = proposal_of(alice)
    envelope = prepared_envelope(proposal, peer, b"r")
    prepared = read_endorse_response(
        proposal, gateway_pb2.EndorseResponse(prepared_transaction=envelope)
    )
    request = submit_request(prepared, alice)
    assert (request.transaction_id, request.channel_id) == (proposal.transaction_id, "mychannel")
    sent = request.prepared_transaction
    assert sent.payload == envelope.payload
    assert verifies(alice, sent.signature, sent.payload)
    assert parse_envelope(sent.SerializeToString()).tx_id == proposal.transaction_id


# --- commit status and chaincode events ----------------------------------------------------------


def test_the_commit_status_request_is_signed_over_its_exact_bytes(alice: Signer) -> None:
    signed = signed_commit_status_request(alice, transaction_id="ab12", channel_id="mychannel")
    request = gateway_pb2.CommitStatusRequest.FromString(signed.request)
    assert (request.transaction_id, request.channel_id) == ("ab12", "mychannel")
    assert request.identity == alice.serialized_identity
    assert verifies(alice, signed.signature, signed.request)


@pytest.mark.parametrize(
    ("start_block", "after", "position"),
    [
        pytest.param(None, None, "next_commit", id="no start block means the next commit"),
        pytest.param(0, None, "specified", id="block 0 is a specified start"),
        pytest.param(7, "tx7", "specified", id="a checkpoint resumes after a transaction"),
    ],
)
def test_the_chaincode_events_request_is_signed_over_its_exact_bytes(
    alice: Signer, start_block: int | None, after: str | None, position: str
) -> None:
    signed = signed_chaincode_events_request(
        alice,
        channel_id="mychannel",
        chaincode_name="basic",
        start_block=start_block,
        after_transaction_id=after,
    )
    request = gateway_pb2.ChaincodeEventsRequest.FromString(signed.request)
    assert (request.channel_id, request.chaincode_id) == ("mychannel", "basic")
    assert request.identity == alice.serialized_identity
    assert request.start_position.WhichOneof("Type") == position
    if start_block is not None:
        assert request.start_position.specified.number == start_block
    assert request.after_transaction_id == (after or "")
    assert verifies(alice, signed.signature, signed.request)


# --- the deliver seek envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_block", "position"),
    [
        pytest.param(None, "next_commit", id="no start block waits for the next commit"),
        pytest.param(0, "specified", id="block 0 replays the chain"),
        pytest.param(42, "specified", id="a block number starts there"),
    ],
)
def test_the_seek_envelope_asks_for_every_block_from_the_start(
    alice: Signer, start_block: int | None, position: str
) -> None:
    envelope = seek_envelope(
        alice, channel_id="mychannel", start_block=start_block, timestamp_ms=NOW_MS
    )
    payload = common_pb2.Payload.FromString(envelope.payload)
    seek = ab_pb2.SeekInfo.FromString(payload.data)
    assert seek.start.WhichOneof("Type") == position
    if start_block is not None:
        assert seek.start.specified.number == start_block
    assert seek.stop.specified.number == MAX_BLOCK_NUMBER == 9007199254740991
    assert seek.behavior == ab_pb2.SeekInfo.SeekBehavior.Value("BLOCK_UNTIL_READY")
    assert seek.error_response == ab_pb2.SeekInfo.SeekErrorResponse.Value("STRICT")
    assert seek.content_type == ab_pb2.SeekInfo.SeekContentType.Value("BLOCK")


def test_the_seek_envelope_header_and_signature(alice: Signer) -> None:
    envelope = seek_envelope(alice, channel_id="mychannel", start_block=3, timestamp_ms=NOW_MS)
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert channel_header.type == common_pb2.HeaderType.Value("DELIVER_SEEK_INFO") == 5
    assert (channel_header.channel_id, channel_header.epoch, channel_header.tx_id) == (
        "mychannel",
        0,
        "",
    )
    stamp = channel_header.timestamp
    assert stamp.seconds * 1000 + stamp.nanos // 1_000_000 == NOW_MS
    assert channel_header.tls_cert_hash == b""
    signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    assert signature_header.creator == alice.serialized_identity
    assert signature_header.nonce == b""
    assert verifies(alice, envelope.signature, envelope.payload)


def test_the_seek_envelope_carries_the_tls_certificate_hash(alice: Signer) -> None:
    digest = hashlib.sha256(b"cert").digest()
    envelope = seek_envelope(
        alice, channel_id="ch", start_block=None, timestamp_ms=NOW_MS, tls_cert_hash=digest
    )
    payload = common_pb2.Payload.FromString(envelope.payload)
    assert common_pb2.ChannelHeader.FromString(payload.header.channel_header).tls_cert_hash == (
        digest
    )


def test_a_negative_start_block_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="-1"):
        seek_position(-1)
