"""Channel configuration updates signed by the organisations' admins (membership by vote). Pure.

An update is Fabric's `ConfigUpdateEnvelope`: a `ConfigUpdate` whose `write_set` is the complete
new channel group (we do not compute deltas; the strongest modification policy then applies to
every change) and whose `isolated_data["medalliance/sequence"]` names the config sequence it
produces, so an update made against an older configuration cannot be replayed on a newer one;
and `ConfigSignature`s, each over `signature_header ‖ config_update` as in Fabric. It takes
effect only if the signatures satisfy the current configuration's `/Channel/Admins` policy —
`MAJORITY Admins` of the channel's organisations — and the result is a valid configuration with
a consenter set. Ordering nodes turn an accepted update into a CONFIG transaction, alone in its
block; every node applies the new configuration from the next block on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from fabric_protos.common import common_pb2, configtx_pb2
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from medalliance.errors import InvalidArgument, MedallianceError, PermissionDenied
from medalliance.identity.policy import SignedData
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import EnvelopeView, SigningIdentity, parse_envelope, sign_envelope

ADMINS_POLICY = "/Channel/Admins"
CONFIG = common_pb2.HeaderType.Value("CONFIG")
CONFIG_UPDATE = common_pb2.HeaderType.Value("CONFIG_UPDATE")
SEQUENCE_KEY = "medalliance/sequence"


def propose_update(current: ChannelConfig, new_channel_group: configtx_pb2.ConfigGroup) -> bytes:
    """The `ConfigUpdate` bytes admins sign: replace the channel group, as sequence + 1."""
    update = configtx_pb2.ConfigUpdate(
        channel_id=current.channel_id,
        write_set=new_channel_group,
        isolated_data={SEQUENCE_KEY: str(current.sequence + 1).encode()},
    )
    return bytes(update.SerializeToString())


def sign_update(
    update: bytes, signer: SigningIdentity, nonce: bytes
) -> configtx_pb2.ConfigSignature:
    """One admin's signature over a proposed update."""
    header = common_pb2.SignatureHeader(
        creator=signer.serialized_identity, nonce=nonce
    ).SerializeToString()
    return configtx_pb2.ConfigSignature(
        signature_header=header, signature=signer.sign(header + update)
    )


def apply_update(
    current: ChannelConfig,
    envelope: configtx_pb2.ConfigUpdateEnvelope,
    *,
    at: dt.datetime,
) -> configtx_pb2.Config:
    """The configuration an update produces, if its admins' signatures authorise it.

    Raises `InvalidArgument` for a malformed, stale or invalid update and `PermissionDenied`
    when the signatures do not satisfy `/Channel/Admins`.
    """
    try:
        update = configtx_pb2.ConfigUpdate.FromString(envelope.config_update)
        sequence = int(update.isolated_data[SEQUENCE_KEY].decode())
    except (DecodeError, KeyError, ValueError, UnicodeDecodeError):
        raise InvalidArgument("a config update names the sequence it produces") from None
    if update.channel_id != current.channel_id:
        raise InvalidArgument(
            f"the config update is for channel {update.channel_id!r}, not {current.channel_id!r}"
        )
    if sequence != current.sequence + 1:
        raise InvalidArgument(
            f"the config update was made for sequence {sequence - 1}; the channel is at "
            f"{current.sequence}; propose it again"
        )
    signed = [_signed_data(s, bytes(envelope.config_update)) for s in envelope.signatures]
    if not current.evaluate_policy(ADMINS_POLICY, signed, at=at):
        signers = sorted({_msp_of(current, s, at) for s in signed} - {""})
        raise PermissionDenied(
            f"the config update is signed by admins of {', '.join(signers) or 'no organisation'}; "
            f"{ADMINS_POLICY} needs a majority of the channel's organisations"
        )
    config = configtx_pb2.Config(sequence=sequence, channel_group=update.write_set)
    try:
        parsed = ChannelConfig.from_config(config, current.channel_id)
    except MedallianceError as exc:
        raise InvalidArgument(f"the updated configuration is not valid: {exc}") from None
    if not parsed.consenter_set:
        raise InvalidArgument("the updated configuration names no consenters")
    return config


def update_envelope(
    update: bytes, signatures: Sequence[configtx_pb2.ConfigSignature]
) -> configtx_pb2.ConfigUpdateEnvelope:
    return configtx_pb2.ConfigUpdateEnvelope(config_update=update, signatures=signatures)


def _signed_data(signature: configtx_pb2.ConfigSignature, update: bytes) -> SignedData:
    try:
        header = common_pb2.SignatureHeader.FromString(signature.signature_header)
    except DecodeError:
        raise InvalidArgument("a config update signature header does not parse") from None
    return SignedData(
        data=bytes(signature.signature_header) + update,
        identity=bytes(header.creator),
        signature=bytes(signature.signature),
    )


def _msp_of(config: ChannelConfig, signed: SignedData, at: dt.datetime) -> str:
    try:
        identity = config.msps.deserialize(signed.identity, at=at)
    except MedallianceError:
        return ""
    return (
        identity.msp_id
        if identity.is_admin and identity.verify(signed.signature, signed.data)
        else ""
    )


def update_of(view: EnvelopeView) -> configtx_pb2.ConfigUpdateEnvelope:
    """The `ConfigUpdateEnvelope` a CONFIG_UPDATE transaction carries."""
    if view.header.header_type != CONFIG_UPDATE:
        raise InvalidArgument("not a CONFIG_UPDATE transaction")
    try:
        return configtx_pb2.ConfigUpdateEnvelope.FromString(view.data)
    except DecodeError:
        raise InvalidArgument("a CONFIG_UPDATE transaction holds no ConfigUpdateEnvelope") from None


def config_transaction(
    config: configtx_pb2.Config,
    update: bytes,
    signer: SigningIdentity,
    *,
    timestamp_ms: int,
) -> bytes:
    """The CONFIG transaction an ordering node makes of an accepted CONFIG_UPDATE `update`:
    the new configuration and the update it came from, signed by the node. It keeps the
    update's tx id, so the submitter can follow its transaction to the block."""
    view = parse_envelope(update)
    header = common_pb2.ChannelHeader(
        type=CONFIG,
        version=1,
        channel_id=view.header.channel_id,
        tx_id=view.header.tx_id,
        timestamp=Timestamp(seconds=timestamp_ms // 1000, nanos=(timestamp_ms % 1000) * 1_000_000),
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(
                creator=signer.serialized_identity
            ).SerializeToString(),
        ),
        data=configtx_pb2.ConfigEnvelope(
            config=config, last_update=common_pb2.Envelope.FromString(update)
        ).SerializeToString(),
    )
    return sign_envelope(payload.SerializeToString(), signer)


def check_config_transaction(
    current: ChannelConfig, envelope: bytes, *, at: dt.datetime
) -> configtx_pb2.Config:
    """The configuration a CONFIG transaction of a block installs, if it is what its update
    produces from `current` and a consenter of `current` signed it; typed errors otherwise."""
    view = parse_envelope(envelope)
    if view.header.header_type != CONFIG:
        raise InvalidArgument("not a CONFIG transaction")
    consenters = {c.identity for c in current.consenter_set}
    if view.header.creator not in consenters:
        raise PermissionDenied("a CONFIG transaction must come from a consenter of the channel")
    creator = current.msps.deserialize(view.header.creator, at=at)
    if not creator.verify(view.signature, view.payload_bytes):
        raise PermissionDenied("the CONFIG transaction's signature does not verify")
    try:
        config_envelope = configtx_pb2.ConfigEnvelope.FromString(view.data)
    except DecodeError:
        raise InvalidArgument("a CONFIG transaction holds no ConfigEnvelope") from None
    update_view = parse_envelope(config_envelope.last_update.SerializeToString())
    if update_view.header.tx_id != view.header.tx_id:
        raise InvalidArgument("a CONFIG transaction keeps its update's tx id")
    expected = apply_update(current, update_of(update_view), at=at)
    if expected.SerializeToString(deterministic=True) != config_envelope.config.SerializeToString(
        deterministic=True
    ):
        raise InvalidArgument("the CONFIG transaction's configuration is not what its update makes")
    return expected


def is_config_block(block: common_pb2.Block) -> bool:
    """Whether a block holds one CONFIG transaction (genesis, or an applied update)."""
    if len(block.data.data) != 1:
        return False
    try:
        return bool(parse_envelope(bytes(block.data.data[0])).header.header_type == CONFIG)
    except MedallianceError:
        return False


def latest_config(
    blocks: Callable[[int], common_pb2.Block],
    height: int,
    *,
    valid: Callable[[common_pb2.Block], bool] = lambda block: True,
) -> ChannelConfig:
    """The configuration in force after block `height - 1`: that of the newest config block
    (which `valid` accepts: a peer counts only the config blocks it validated)."""
    for number in range(height - 1, -1, -1):
        block = blocks(number)
        if is_config_block(block) and (number == 0 or valid(block)):
            return ChannelConfig.from_block(block)
    raise InvalidArgument("the ledger holds no config block")
