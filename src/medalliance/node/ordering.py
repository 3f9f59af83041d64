"""Fabric's Broadcast admission for one envelope (used by the ordering replica's
`node/block_rules.py`): the envelope must parse, its creator must be a valid identity of a
channel member that signed the payload and satisfies the channel's Writers policy, and it must
fit `absolute_max_bytes`.
"""

from __future__ import annotations

import datetime as dt

from medalliance.errors import BadSignature, InvalidArgument, PermissionDenied
from medalliance.identity.policy import SignedData
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import MalformedTransaction, parse_envelope

WRITERS_POLICY = "/Channel/Writers"


def admit(config: ChannelConfig, envelope: bytes, *, now: dt.datetime) -> str:
    """Fabric's Broadcast admission for one envelope: size, form, channel, the creator's valid
    identity and signature, the channel's Writers policy. Returns the tx id; typed errors."""
    if len(envelope) > config.batch_absolute_max_bytes:
        raise InvalidArgument(
            f"transaction of {len(envelope)} bytes exceeds the channel's limit of "
            f"{config.batch_absolute_max_bytes} bytes"
        )
    try:
        view = parse_envelope(envelope)
    except MalformedTransaction as exc:
        raise InvalidArgument(str(exc)) from exc
    header = view.header
    if header.channel_id != config.channel_id:
        raise InvalidArgument(
            f"transaction for channel {header.channel_id!r} sent to {config.channel_id!r}"
        )
    if not view.signature:
        raise InvalidArgument("the transaction envelope must be signed")
    creator = config.msps.deserialize(header.creator, at=now)
    if not creator.verify(view.signature, view.payload_bytes):
        raise BadSignature("the envelope signature does not verify against its creator")
    signed = [SignedData(view.payload_bytes, header.creator, view.signature)]
    if not config.evaluate_policy(WRITERS_POLICY, signed, at=now):
        raise PermissionDenied(f"{creator.msp_id} may not write to {config.channel_id}")
    return str(header.tx_id)
