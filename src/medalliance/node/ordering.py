"""Fabric's Broadcast admission for one envelope (used by the ordering replica's
`node/block_rules.py`): the envelope must parse, its creator must be a valid identity of a
channel member that signed the payload and satisfies the channel's Writers policy, and it must
fit `absolute_max_bytes`. The header, creator and signature go through the one signed-header
check (ledger/signed_header.py): epoch 0, a nonce and a creator. As Fabric's orderer, it does not
judge the tx id: a committing peer marks a wrong one BAD_PROPOSAL_TXID.

An ordering node meets each envelope up to four times: Broadcast (the entry node), admission,
the block time of a proposal and valid(v). `parsed` parses it once per process: a parse is a pure
function of the exact bytes, so the memo cannot change a verdict; what depends on time and
configuration (the creator's validity, the Writers policy) is judged on every call.
"""

from __future__ import annotations

import datetime as dt

from medalliance.errors import BadSignature, InvalidArgument, PermissionDenied
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.signed_header import CreatorRejected, SignatureRejected, check_signed_header
from medalliance.ledger.tx import EnvelopeView, MalformedTransaction, parse_envelope

WRITERS_POLICY = "/Channel/Writers"

# Envelopes between their arrival and their block: a few blocks at several hundred tx/s. Each
# entry holds about twice the envelope (payload and data), so the bound is also a memory bound.
PARSED_MAX = 2048
_parsed: dict[bytes, EnvelopeView] = {}


def parsed(envelope: bytes) -> EnvelopeView:
    """`parse_envelope(envelope)`, parsed once per process for up to `PARSED_MAX` envelopes
    that parsed (failures are not kept: they are cheap to redo and would only crowd the memo)."""
    view = _parsed.get(envelope)
    if view is None:
        view = parse_envelope(envelope)
        if len(_parsed) >= PARSED_MAX:  # start afresh: at worst the envelopes in flight are
            _parsed.clear()  # parsed once more, and no thread can trip over an eviction
        _parsed[envelope] = view
    return view


def admit(config: ChannelConfig, envelope: bytes, *, now: dt.datetime) -> str:
    """Fabric's Broadcast admission for one envelope: size, form, channel, the creator's valid
    identity and signature, the channel's Writers policy. Returns the tx id; typed errors."""
    return admit_parsed(config, parse(config, envelope), now=now)


def parse(config: ChannelConfig, envelope: bytes) -> EnvelopeView:
    """Admission's first checks, size and form: the envelope parsed, or `InvalidArgument`."""
    if len(envelope) > config.batch_absolute_max_bytes:
        raise InvalidArgument(
            f"transaction of {len(envelope)} bytes exceeds the channel's limit of "
            f"{config.batch_absolute_max_bytes} bytes"
        )
    try:
        return parsed(envelope)
    except MalformedTransaction as exc:
        raise InvalidArgument(str(exc)) from exc


def admit_parsed(config: ChannelConfig, view: EnvelopeView, *, now: dt.datetime) -> str:
    """`admit` of an envelope its caller got from `parse`: the block rules parse each
    envelope once, for admission and for their own checks."""
    header = view.header
    if header.channel_id != config.channel_id:
        raise InvalidArgument(
            f"transaction for channel {header.channel_id!r} sent to {config.channel_id!r}"
        )
    if not view.signature:
        raise InvalidArgument("the transaction envelope must be signed")
    try:  # the type (endorser transaction or config update) is the block rules' to check
        creator = check_signed_header(
            header, view.signature, view.payload_bytes, config.msps, at=now, header_type=None
        )
    except SignatureRejected as exc:  # the text Broadcast clients have always seen
        raise BadSignature("the envelope signature does not verify against its creator") from exc
    except CreatorRejected as exc:  # the identity's own error, as Broadcast clients saw it
        raise (exc.__cause__ or exc) from None
    # The one signature was just checked: the creator, valid at `now`, is the whole signer set
    # the policy sees (what `evaluate_policy` would find again by deserializing and verifying).
    if not config.satisfied_by(WRITERS_POLICY, (creator,)):
        raise PermissionDenied(f"{creator.msp_id} may not write to {config.channel_id}")
    return str(header.tx_id)
