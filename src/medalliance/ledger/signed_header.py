"""The one check of a signed header: channel header, signature header and the creator's signature.

A transaction's header is checked by the endorser (the proposal), the gateway (the signed
envelope at Submit), the ordering service's Broadcast admission (node/ordering.py) and the
committing peer's validation (each transaction of a block). They used to carry their own
copies, in different orders; this module is the copy. The order is Fabric's
(`ValidateProposalMessage`, `ValidateTransaction`): the common header fields, then the creator
and its signature, then the transaction id. Each failure raises `HeaderRejected` carrying the
Fabric validation code a committing peer records for it, so every caller can report it in its
own protocol (a gRPC status, a Broadcast status, a validation code).

The creator's signature goes through `Identity.verify`, which remembers successes per process
(identity/verified.py): the gateway's check at Submit makes the same envelope's check at commit
cost a hash, not an ECDSA verification.
"""

from __future__ import annotations

import datetime as dt

from medalliance.errors import BadSignature, InvalidArgument, InvalidIdentity, MedallianceError
from medalliance.identity.msp import Identity, MspManager
from medalliance.ledger.tx import ENDORSER_TRANSACTION, HeaderView, compute_tx_id


class HeaderRejected(MedallianceError):
    """A signed header that fails the check; `code` names Fabric's `TxValidationCode`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MalformedHeader(HeaderRejected, InvalidArgument):
    status = InvalidArgument.status


class CreatorRejected(HeaderRejected, InvalidIdentity):
    status = InvalidIdentity.status


class SignatureRejected(HeaderRejected, BadSignature):
    status = BadSignature.status


def check_signed_header(
    header: HeaderView,
    signature: bytes,
    signed_bytes: bytes,
    msps: MspManager,
    *,
    at: dt.datetime,
    header_type: int | None = ENDORSER_TRANSACTION,
    channel_id: str | None = None,
) -> Identity:
    """The header's creator, once the header is well formed (of `header_type` and for
    `channel_id` when given; epoch 0, a nonce and a creator; when `header_type` is an endorser
    transaction, a tx id derived from them), the creator is a valid member at `at` and
    `signature` is its signature of `signed_bytes` (the proposal or the envelope's payload, as
    sent)."""
    if header_type is not None and header.header_type != header_type:
        raise MalformedHeader(
            "UNKNOWN_TX_TYPE", f"header type {header.header_type} is not supported here"
        )
    if header.epoch != 0 or not header.nonce or not header.creator:
        raise MalformedHeader("BAD_COMMON_HEADER", "epoch must be 0 and nonce and creator set")
    if channel_id is not None and header.channel_id != channel_id:
        raise MalformedHeader("TARGET_CHAIN_NOT_FOUND", f"header for channel {header.channel_id!r}")
    try:
        creator = msps.deserialize(header.creator, at=at)
    except MedallianceError as exc:
        raise CreatorRejected("BAD_CREATOR_SIGNATURE", f"creator is not valid: {exc}") from exc
    if not creator.verify(signature, signed_bytes):
        raise SignatureRejected("BAD_CREATOR_SIGNATURE", "the creator's signature does not verify")
    # With `header_type=None` (Broadcast) the tx id is not judged: Fabric's orderer orders it and
    # the committing peer marks it BAD_PROPOSAL_TXID, so ordering must not refuse it first.
    endorser_tx = header_type == ENDORSER_TRANSACTION
    if endorser_tx and compute_tx_id(header.nonce, header.creator) != header.tx_id:
        raise MalformedHeader("BAD_PROPOSAL_TXID", "tx id is not sha256(nonce ‖ creator)")
    return creator
