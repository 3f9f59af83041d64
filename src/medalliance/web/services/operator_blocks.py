"""The block explorer: blocks of the operator's own peer, their hashes, commit certificate and
transactions — never a transaction's arguments, read-write set or payload.

Arguments and payloads may hold patient data (docs/privacy.md §5: the chain holds pseudonyms and
ids, but a careless client could still pass more), so a transaction is shown by its id, header
type, creator MSP, contract, function name (the first invocation argument, which the contract
API reserves for it) and validation code only. Hashes are computed from the received bytes
(ledger/block.py), the validation codes read from the block's transactions filter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, transaction_pb2
from google.protobuf.message import DecodeError

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.errors import InvalidArgument, MedallianceError, UnknownBlock
from medalliance.ledger.block import header_hash, transactions_filter
from medalliance.ledger.commit_certificate import read_certificate
from medalliance.ledger.tx import parse_envelope
from medalliance.web.services.operator_staff import require_operator
from medalliance.web.services.peer_height import peer_height
from medalliance.web.staff import Staff

__all__ = [
    "BlockList",
    "BlockSummary",
    "BlockView",
    "CertificateSignature",
    "TxRow",
    "block",
    "blocks",
]

PAGE_BLOCKS_MAX = 50


@dataclass(frozen=True, slots=True)
class BlockSummary:
    number: int
    transactions: int
    header_hash: str
    time: str  # the latest transaction time in the block ("" if none)


@dataclass(frozen=True, slots=True)
class BlockList:
    height: int
    blocks: tuple[BlockSummary, ...]  # newest first


@dataclass(frozen=True, slots=True)
class TxRow:
    index: int
    tx_id: str
    type: str  # ENDORSER_TRANSACTION, CONFIG, ...
    creator_msp: str
    contract: str
    function: str
    validation_code: str  # VALID, MVCC_READ_CONFLICT, ...
    time: str


@dataclass(frozen=True, slots=True)
class CertificateSignature:
    msp_id: str
    signer: str  # the consenter's certificate common name
    signature: str  # hex, as stored


@dataclass(frozen=True, slots=True)
class BlockView:
    number: int
    data_hash: str
    previous_hash: str
    header_hash: str
    certificate_round: int | None  # None: no commit certificate (e.g. the genesis block)
    signatures: tuple[CertificateSignature, ...]
    transactions: tuple[TxRow, ...]


def blocks(
    network: AllianceNetwork, staff: Staff, before: int | None = None, count: int = 20
) -> BlockList:
    """Up to `count` blocks below `before` (None: the newest), newest first."""
    msp_id = require_operator(staff)
    height = peer_height(network, msp_id)
    if not 1 <= count <= PAGE_BLOCKS_MAX:
        raise InvalidArgument(f"count must be 1 to {PAGE_BLOCKS_MAX}")
    top = height if before is None else min(max(before, 0), height)
    first = max(0, top - count)
    summaries = []
    if top > first:
        for raw in network.blocks(msp_id, first, top - 1):
            rows = _transactions(raw)
            summaries.append(
                BlockSummary(
                    int(raw.header.number),
                    len(rows),
                    header_hash(raw.header).hex(),
                    max((r.time for r in rows), default=""),
                )
            )
    return BlockList(height, tuple(reversed(summaries)))


def block(network: AllianceNetwork, staff: Staff, number: int) -> BlockView:
    """One block's header, hashes, certificate and transactions. `UnknownBlock` past the end."""
    msp_id = require_operator(staff)
    height = peer_height(network, msp_id)
    if not 0 <= number < height:
        raise UnknownBlock(number, height)
    (raw,) = network.blocks(msp_id, number, number)
    certificate = read_certificate(raw)
    signatures: tuple[CertificateSignature, ...] = ()
    if certificate is not None:
        signatures = tuple(
            CertificateSignature(*_identity(identity), signature.hex())
            for identity, signature in certificate.signatures
        )
    return BlockView(
        int(raw.header.number), bytes(raw.header.data_hash).hex(),
        bytes(raw.header.previous_hash).hex(), header_hash(raw.header).hex(),
        certificate.round if certificate is not None else None, signatures, _transactions(raw),
    )  # fmt: skip


def _transactions(raw: common_pb2.Block) -> tuple[TxRow, ...]:
    codes = transactions_filter(raw)
    rows = []
    for index, data in enumerate(raw.data.data):
        code = codes[index] if index < len(codes) else 255
        try:
            envelope = parse_envelope(bytes(data))
        except MedallianceError:
            rows.append(TxRow(index, "", "MALFORMED", "", "", "", _code(code), ""))
            continue
        header = envelope.header
        rows.append(
            TxRow(
                index,
                header.tx_id,
                _header_type(header.header_type),
                _identity(header.creator)[0],
                header.chaincode_name,
                _function(envelope.data, header.header_type),
                _code(code),
                _time(header.timestamp_ms),
            )
        )
    return tuple(rows)


def _function(data: bytes, header_type: int) -> str:
    """The invoked function's name: the first argument of the invocation, nothing more."""
    if header_type != common_pb2.HeaderType.Value("ENDORSER_TRANSACTION"):
        return ""
    try:
        tx = transaction_pb2.Transaction.FromString(data)
        action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(
            action.chaincode_proposal_payload
        )
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    except (DecodeError, IndexError):
        return ""
    args = spec.chaincode_spec.input.args
    if not args:
        return ""
    name = bytes(args[0]).decode("utf-8", "replace")
    # A function name is an identifier; anything else is not shown (it could be data).
    return name if name.isidentifier() and len(name) <= 64 else "(not a function name)"


def _identity(serialized: bytes) -> tuple[str, str]:
    """(MSP id, certificate common name) of a serialized identity."""
    try:
        identity = identities_pb2.SerializedIdentity.FromString(serialized)
    except DecodeError:
        return "", ""
    try:
        cert = x509.load_pem_x509_certificate(bytes(identity.id_bytes))
    except ValueError:
        return str(identity.mspid), ""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(identity.mspid), str(names[0].value) if names else ""


def _header_type(value: int) -> str:
    try:
        return str(common_pb2.HeaderType.Name(value))
    except ValueError:
        return str(value)


def _code(value: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(value))
    except ValueError:
        return str(value)


def _time(ms: int) -> str:
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
