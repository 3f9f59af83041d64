"""Fabric transaction formats: typed views over received bytes, and builders for what we emit.

Pure: no clock (timestamps and nonces are arguments), no I/O. Views keep the bytes as received,
because Fabric hashes and verifies those bytes, never a re-serialisation (protocol doc §2.2).
Parsing failures raise `MalformedTransaction`, which carries the Fabric validation code a
committing peer records for that transaction (protocol doc §4).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from medalliance.errors import InvalidArgument

Code = transaction_pb2.TxValidationCode
ENDORSER_TRANSACTION = common_pb2.HeaderType.Value("ENDORSER_TRANSACTION")
CONFIG = common_pb2.HeaderType.Value("CONFIG")


class MalformedTransaction(InvalidArgument):
    """A proposal or transaction that does not have Fabric's structure."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class SigningIdentity(Protocol):
    """What a builder needs of a signer (implemented by `identity.signing.Signer`)."""

    @property
    def serialized_identity(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


# Fabric's peer.authentication.timewindow: a request stamped further than this from the node's
# clock is refused, which bounds how long a captured request can be replayed.
TIME_WINDOW = dt.timedelta(minutes=15)


def outside_time_window(timestamp_ms: int, now: dt.datetime) -> bool:
    """Whether a request stamped `timestamp_ms` (Unix ms) is too far from `now` to accept.
    In integer milliseconds: a stamp is any int64 its sender chose, most beyond a datetime."""
    now_ms = int(now.timestamp() * 1000)
    return abs(timestamp_ms - now_ms) > TIME_WINDOW // dt.timedelta(milliseconds=1)


def stamped_ahead(timestamp_ms: int, now: dt.datetime) -> bool:
    """Whether `timestamp_ms` (Unix ms) lies more than `TIME_WINDOW` ahead of `now`."""
    return timestamp_ms - int(now.timestamp() * 1000) > TIME_WINDOW // dt.timedelta(milliseconds=1)


def stamped_at(timestamp_ms: int) -> dt.datetime:
    """A header's timestamp as the time it names; `MalformedTransaction` (BAD_COMMON_HEADER)
    when no datetime can hold it, rather than an error no caller expects from a field its
    sender chose."""
    try:
        return dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedTransaction(
            Code.Value("BAD_COMMON_HEADER"), f"timestamp of {timestamp_ms} ms is out of range"
        ) from exc


def compute_tx_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: lower-case hex of SHA-256(nonce ‖ serialized creator)."""
    return hashlib.sha256(nonce + creator).hexdigest()


def serialize_identity(msp_id: str, cert_pem: bytes) -> bytes:
    return bytes(
        identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=cert_pem).SerializeToString()
    )


def timestamp_ms(ts: Timestamp) -> int:
    return int(ts.seconds) * 1000 + int(ts.nanos) // 1_000_000


# --- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderView:
    """A `common.Header` split into its parts, with the bytes as received."""

    channel_header_bytes: bytes
    signature_header_bytes: bytes
    header_type: int
    channel_id: str
    tx_id: str
    epoch: int
    timestamp_ms: int
    chaincode_name: str  # from the ChaincodeHeaderExtension; "" when absent
    creator: bytes
    nonce: bytes


@dataclass(frozen=True, slots=True)
class ProposalView:
    """A parsed `SignedProposal`: what an endorser needs to check and simulate it."""

    proposal_bytes: bytes
    signature: bytes
    header: HeaderView
    header_bytes: bytes
    chaincode_name: str
    args: tuple[bytes, ...] = field(repr=False)
    transient: Mapping[str, bytes] = field(repr=False)
    # ChaincodeProposalPayload without its TransientMap: what the transaction records.
    payload_for_tx: bytes = field(repr=False)

    @property
    def tx_id(self) -> str:
        return self.header.tx_id

    @property
    def channel_id(self) -> str:
        return self.header.channel_id

    @property
    def function(self) -> str:
        return self.args[0].decode("utf-8", "replace") if self.args else ""

    @property
    def proposal_hash(self) -> bytes:
        """Fabric's proposal hash, as endorsers sign it and committers recheck it."""
        return proposal_hash(
            self.header.channel_header_bytes,
            self.header.signature_header_bytes,
            self.payload_for_tx,
        )


@dataclass(frozen=True, slots=True)
class Endorsement:
    endorser: bytes  # serialized identity
    signature: bytes


@dataclass(frozen=True, slots=True)
class EndorserTxView:
    """The parts of an endorser transaction that validation checks."""

    action_header_bytes: bytes
    chaincode_proposal_payload: bytes = field(repr=False)
    proposal_response_payload: bytes = field(repr=False)
    endorsements: tuple[Endorsement, ...]
    proposal_hash: bytes  # as recorded in the ProposalResponsePayload
    chaincode_name: str
    chaincode_version: str
    rwset: bytes = field(repr=False)
    events: bytes = field(repr=False)
    response_status: int
    response_payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class EnvelopeView:
    """A parsed `common.Envelope` of a block or a Submit request."""

    payload_bytes: bytes = field(repr=False)
    signature: bytes
    header: HeaderView
    data: bytes = field(repr=False)

    @property
    def tx_id(self) -> str:
        return self.header.tx_id

    def endorser_tx(self) -> EndorserTxView:
        """The endorser-transaction body; raises `MalformedTransaction` with Fabric's code."""
        return _parse_endorser_tx(self.data)


def parse_header(header: common_pb2.Header) -> HeaderView:
    """Split a `common.Header`; raises `MalformedTransaction(BAD_COMMON_HEADER)` when broken."""
    chdr = common_pb2.ChannelHeader()
    shdr = common_pb2.SignatureHeader()
    ext = proposal_pb2.ChaincodeHeaderExtension()
    try:
        chdr.ParseFromString(header.channel_header)
        shdr.ParseFromString(header.signature_header)
        if chdr.extension:
            ext.ParseFromString(chdr.extension)
    except DecodeError as exc:
        raise MalformedTransaction(Code.Value("BAD_COMMON_HEADER"), f"bad header: {exc}") from exc
    return HeaderView(
        channel_header_bytes=bytes(header.channel_header),
        signature_header_bytes=bytes(header.signature_header),
        header_type=int(chdr.type),
        channel_id=str(chdr.channel_id),
        tx_id=str(chdr.tx_id),
        epoch=int(chdr.epoch),
        timestamp_ms=timestamp_ms(chdr.timestamp),
        chaincode_name=str(ext.chaincode_id.name),
        creator=bytes(shdr.creator),
        nonce=bytes(shdr.nonce),
    )


def parse_signed_proposal(
    signed: proposal_pb2.SignedProposal, *, max_bytes: Callable[[str], int] | None = None
) -> ProposalView:
    """Parse a signed proposal; raises `MalformedTransaction` naming the broken part.

    A peer passes `max_bytes(channel_id)`, the channel's `absolute_max_bytes` (raising for an
    unknown channel): a larger proposal could never be ordered, so it is refused after reading
    only its header, before its payload is decoded. (Without it, an 80 MB argument grew a peer to
    1.5 GB.) Only a client reading back its own proposals leaves it out.
    """
    size = signed.ByteSize()
    if not signed.proposal_bytes:
        raise MalformedTransaction(Code.Value("BAD_PAYLOAD"), "the signed proposal is empty")
    proposal = proposal_pb2.Proposal()
    header = common_pb2.Header()
    cpp = proposal_pb2.ChaincodeProposalPayload()
    cis = chaincode_pb2.ChaincodeInvocationSpec()
    try:
        proposal.ParseFromString(signed.proposal_bytes)
        header.ParseFromString(proposal.header)
    except DecodeError as exc:
        raise MalformedTransaction(Code.Value("BAD_PAYLOAD"), f"malformed proposal: {exc}") from exc
    view = parse_header(header)
    limit = max_bytes(view.channel_id) if max_bytes is not None else size
    if size > limit:
        raise MalformedTransaction(
            Code.Value("BAD_PAYLOAD"),
            f"the proposal is {_mib(size)}; channel {view.channel_id} accepts transactions of "
            f"at most {_mib(limit)} (its absolute_max_bytes): send large documents through "
            "the privacy module, not as contract arguments",
        )
    try:
        cpp.ParseFromString(proposal.payload)
        cis.ParseFromString(cpp.input)
    except DecodeError as exc:
        raise MalformedTransaction(Code.Value("BAD_PAYLOAD"), f"malformed proposal: {exc}") from exc
    stripped = proposal_pb2.ChaincodeProposalPayload(input=cpp.input)
    return ProposalView(
        proposal_bytes=bytes(signed.proposal_bytes),
        signature=bytes(signed.signature),
        header=view,
        header_bytes=bytes(proposal.header),
        chaincode_name=str(cis.chaincode_spec.chaincode_id.name),
        args=tuple(bytes(a) for a in cis.chaincode_spec.input.args),
        transient={str(k): bytes(v) for k, v in cpp.TransientMap.items()},
        payload_for_tx=bytes(stripped.SerializeToString()),
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def parse_envelope(data: bytes) -> EnvelopeView:
    """Parse an envelope; raises `MalformedTransaction` (NIL_ENVELOPE, BAD_PAYLOAD, ...)."""
    if not data:
        raise MalformedTransaction(Code.Value("NIL_ENVELOPE"), "empty envelope")
    envelope = common_pb2.Envelope()
    payload = common_pb2.Payload()
    try:
        envelope.ParseFromString(data)
        payload.ParseFromString(envelope.payload)
    except DecodeError as exc:
        raise MalformedTransaction(Code.Value("BAD_PAYLOAD"), f"malformed envelope: {exc}") from exc
    if not payload.HasField("header"):
        raise MalformedTransaction(Code.Value("BAD_PAYLOAD"), "the envelope payload has no header")
    return EnvelopeView(
        payload_bytes=bytes(envelope.payload),
        signature=bytes(envelope.signature),
        header=parse_header(payload.header),
        data=bytes(payload.data),
    )


def parse_envelopes(
    block: common_pb2.Block | Sequence[bytes],
) -> list[EnvelopeView | MalformedTransaction]:
    """Each envelope of `block` (or of the block's envelope bytes, when the caller has read them
    out already) parsed, or the error parsing it raised: a peer parses a block's envelopes once
    and hands them to both the block's time and its validation."""
    views: list[EnvelopeView | MalformedTransaction] = []
    for data in block.data.data if isinstance(block, common_pb2.Block) else block:
        try:
            views.append(parse_envelope(bytes(data)))
        except MalformedTransaction as exc:
            views.append(exc)
    return views


def proposal_hash(channel_header: bytes, signature_header: bytes, payload_for_tx: bytes) -> bytes:
    return hashlib.sha256(channel_header + signature_header + payload_for_tx).digest()


def _parse_endorser_tx(data: bytes) -> EndorserTxView:
    tx = transaction_pb2.Transaction()
    cap = transaction_pb2.ChaincodeActionPayload()
    prp = proposal_response_pb2.ProposalResponsePayload()
    action = proposal_pb2.ChaincodeAction()
    try:
        tx.ParseFromString(data)
        if len(tx.actions) != 1:
            raise MalformedTransaction(
                Code.Value("NIL_TXACTION"),
                f"an endorser transaction has exactly one action, this one has {len(tx.actions)}",
            )
        cap.ParseFromString(tx.actions[0].payload)
        prp.ParseFromString(cap.action.proposal_response_payload)
        action.ParseFromString(prp.extension)
    except DecodeError as exc:
        raise MalformedTransaction(
            Code.Value("BAD_PAYLOAD"), f"malformed endorser transaction: {exc}"
        ) from exc
    return EndorserTxView(
        action_header_bytes=bytes(tx.actions[0].header),
        chaincode_proposal_payload=bytes(cap.chaincode_proposal_payload),
        proposal_response_payload=bytes(cap.action.proposal_response_payload),
        endorsements=tuple(
            Endorsement(bytes(e.endorser), bytes(e.signature)) for e in cap.action.endorsements
        ),
        proposal_hash=bytes(prp.proposal_hash),
        chaincode_name=str(action.chaincode_id.name),
        chaincode_version=str(action.chaincode_id.version),
        rwset=bytes(action.results),
        events=bytes(action.events),
        response_status=int(action.response.status),
        response_payload=bytes(action.response.payload),
    )


def parse_rwset(data: bytes) -> tuple[tuple[str, kv_rwset_pb2.KVRWSet], ...]:
    """The (namespace, KVRWSet) pairs of a TxReadWriteSet; raises `MalformedTransaction(BAD_RWSET)`."""
    txrw = rwset_pb2.TxReadWriteSet()
    out: list[tuple[str, kv_rwset_pb2.KVRWSet]] = []
    try:
        txrw.ParseFromString(data)
        for ns in txrw.ns_rwset:
            kv = kv_rwset_pb2.KVRWSet()
            kv.ParseFromString(ns.rwset)
            out.append((str(ns.namespace), kv))
    except DecodeError as exc:
        raise MalformedTransaction(
            Code.Value("BAD_RWSET"), "the read-write set does not decode"
        ) from exc
    return tuple(out)


def parse_chaincode_event(data: bytes) -> chaincode_event_pb2.ChaincodeEvent:
    event = chaincode_event_pb2.ChaincodeEvent()
    event.ParseFromString(data)
    return event


# --- builders ------------------------------------------------------------------------------------


def new_signed_proposal(
    signer: SigningIdentity,
    *,
    channel_id: str,
    chaincode: str,
    args: Sequence[bytes],
    nonce: bytes,
    timestamp_ms: int,
    transient: Mapping[str, bytes] | None = None,
) -> tuple[proposal_pb2.SignedProposal, str]:
    """Build and sign a proposal exactly as Fabric's gateway client does (protocol doc §2.1).

    Returns the signed proposal and its tx id. The caller supplies the nonce (24 random bytes)
    and the timestamp, so this stays pure.
    """
    creator = signer.serialized_identity
    tx_id = compute_tx_id(nonce, creator)
    # Sub-messages are filled in place, not passed to constructors (which copy them), and the
    # chaincode header extension is serialised once per chaincode: half the building time of a
    # client's proposal, the same bytes (tests/unit/ledger/test_tx.py pins them).
    channel_header = common_pb2.ChannelHeader(
        type=ENDORSER_TRANSACTION,
        channel_id=channel_id,
        tx_id=tx_id,
        extension=_chaincode_header_extension(chaincode),
    )
    channel_header.timestamp.seconds = timestamp_ms // 1000
    channel_header.timestamp.nanos = (timestamp_ms % 1000) * 1_000_000
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=creator, nonce=nonce
        ).SerializeToString(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec()
    spec = invocation.chaincode_spec
    spec.type = _NODE_CHAINCODE
    spec.chaincode_id.name = chaincode
    spec.input.args.extend(args)
    payload = proposal_pb2.ChaincodeProposalPayload(input=invocation.SerializeToString())
    if transient:
        payload.TransientMap.update(transient)
    proposal_bytes = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    ).SerializeToString()
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=proposal_bytes, signature=signer.sign(proposal_bytes)
    )
    return signed, tx_id


_NODE_CHAINCODE = chaincode_pb2.ChaincodeSpec.Type.Value("NODE")


@functools.lru_cache(maxsize=256)
def _chaincode_header_extension(chaincode: str) -> bytes:
    return bytes(
        proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
        ).SerializeToString()
    )


def new_proposal_response(
    proposal: ProposalView,
    endorser: SigningIdentity,
    *,
    chaincode_version: str,
    status: int,
    message: str,
    payload: bytes,
    rwset: bytes,
    event: bytes | None,
) -> proposal_response_pb2.ProposalResponse:
    """An endorsed proposal response; the endorsement signs `payload ‖ endorser` (Fabric's rule)."""
    action = proposal_pb2.ChaincodeAction(
        results=rwset,
        events=event or b"",
        response=proposal_response_pb2.Response(status=status, message=message, payload=payload),
        chaincode_id=chaincode_pb2.ChaincodeID(
            name=proposal.chaincode_name, version=chaincode_version
        ),
    )
    prp_bytes = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=proposal.proposal_hash, extension=action.SerializeToString()
    ).SerializeToString()
    identity = endorser.serialized_identity
    return proposal_response_pb2.ProposalResponse(
        version=1,
        response=proposal_response_pb2.Response(status=status, message=message, payload=payload),
        payload=prp_bytes,
        endorsement=proposal_response_pb2.Endorsement(
            endorser=identity, signature=endorser.sign(prp_bytes + identity)
        ),
    )


def new_error_response(status: int, message: str) -> proposal_response_pb2.ProposalResponse:
    """A refused proposal: no payload and no endorsement, as Fabric's endorser answers."""
    return proposal_response_pb2.ProposalResponse(
        version=1, response=proposal_response_pb2.Response(status=status, message=message)
    )


def new_transaction_payload(
    proposal: ProposalView, responses: Sequence[proposal_response_pb2.ProposalResponse]
) -> bytes:
    """The unsigned `Envelope.payload` of a transaction built from matching endorsements.

    Raises `InvalidArgument` when there are no responses or their payloads differ (endorsers
    that simulated different results cannot be combined: Fabric's rule).
    """
    if not responses:
        raise InvalidArgument("a transaction needs at least one endorsement")
    first = bytes(responses[0].payload)
    if any(bytes(r.payload) != first for r in responses[1:]):
        raise InvalidArgument(
            "endorsers returned different results; the contract is not deterministic "
            "or the peers' states differ"
        )
    endorsed = transaction_pb2.ChaincodeEndorsedAction(
        proposal_response_payload=first,
        endorsements=[r.endorsement for r in responses],
    )
    cap = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=proposal.payload_for_tx, action=endorsed
    )
    tx = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=proposal.header.signature_header_bytes, payload=cap.SerializeToString()
            )
        ]
    )
    header = common_pb2.Header(
        channel_header=proposal.header.channel_header_bytes,
        signature_header=proposal.header.signature_header_bytes,
    )
    return bytes(common_pb2.Payload(header=header, data=tx.SerializeToString()).SerializeToString())


def sign_envelope(payload: bytes, signer: SigningIdentity) -> bytes:
    """A serialized envelope: the payload and the submitter's signature over it."""
    return bytes(
        common_pb2.Envelope(payload=payload, signature=signer.sign(payload)).SerializeToString()
    )
