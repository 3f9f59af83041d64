"""A block's commit certificate: the PRECOMMIT signatures of a quorum of the ordering service.

Pure. The BFT ordering service (docs/consensus.md) decides a block when q = ⌈(n+f+1)/2⌉ of its
n consenters precommit its id — the SHA-256 of its header — in one round; those signatures are
stored in the block's SIGNATURES metadata, Fabric's place for orderer signatures, outside the
header hash:

- `Metadata.value` is an `OrdererBlockMetadata` whose `consenter_metadata` is the domain tag and
  the round, and whose `last_config` names the channel's last config block;
- each `MetadataSignature` has a `SignatureHeader` whose `creator` is the consenter's serialized
  identity (empty nonce) and a `signature` over the canonical PRECOMMIT bytes (`signed_bytes`).

Anyone holding the channel's consenter set — the `Orderers` value of the config — can check a
block's finality with nothing else: distinct consenters, valid certificates at the block's time,
valid signatures, at least q of them. The canonical bytes are the consensus messages' own, so the
certificate is made of the very votes that decided the block.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import MedallianceError
from medalliance.identity.msp import MspManager
from medalliance.ledger.block import header_hash

DOMAIN_TAG = b"medalliance/bft/v1"
SIGNATURES = common_pb2.BlockMetadataIndex.Value("SIGNATURES")


@dataclass(frozen=True, slots=True)
class Consenter:
    """One ordering node of the consenter set, as the channel config names it."""

    id: int  # never reused (design §4)
    name: str  # the node's name (its certificate's CN), its id in consensus messages
    host: str  # where it listens
    port: int
    msp_id: str
    identity: bytes = field(repr=False)  # serialized identity (SerializedIdentity)
    # PEM TLS certificates (Fabric's consenter mapping): only a caller presenting the client
    # certificate may speak to the ordering nodes' consensus service (docs/consensus.md)
    client_tls_cert: bytes = field(default=b"", repr=False)
    server_tls_cert: bytes = field(default=b"", repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def quorum(n: int) -> int:
    """q = ⌈(n+f+1)/2⌉ with f = ⌊(n−1)/3⌋."""
    f = (n - 1) // 3
    return (n + f + 2) // 2


def signed_bytes(
    kind: str, channel: str, height: int, round: int, valid_round: int, value_id: bytes | None
) -> bytes:
    """The canonical bytes a consensus signature covers: length-prefixed domain tag, kind,
    channel, height, round, valid round and value id (NIL cannot collide with an id)."""
    value = b"" if value_id is None else b"\x01" + value_id
    fields = (
        DOMAIN_TAG,
        kind.encode("ascii"),
        channel.encode("utf-8"),
        height.to_bytes(8, "big", signed=True),
        round.to_bytes(8, "big", signed=True),
        valid_round.to_bytes(8, "big", signed=True),
        value,
    )
    return b"".join(len(part).to_bytes(4, "big") + part for part in fields)


def block_id(block: common_pb2.Block) -> bytes:
    """The value id consenters vote on: the block's header hash."""
    return header_hash(block.header)


def precommit_bytes(channel: str, block: common_pb2.Block, round: int) -> bytes:
    return signed_bytes("PRECOMMIT", channel, int(block.header.number), round, -1, block_id(block))


def write_certificate(
    block: common_pb2.Block,
    *,
    round: int,
    signatures: Sequence[tuple[bytes, bytes]],
    last_config: int,
) -> None:
    """Store (consenter identity, PRECOMMIT signature) pairs of `round` as the SIGNATURES
    metadata of `block`."""
    value = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=last_config),
        consenter_metadata=DOMAIN_TAG + round.to_bytes(8, "big"),
    ).SerializeToString()
    metadata = common_pb2.Metadata(value=value)
    for identity, signature in signatures:
        metadata.signatures.add(
            signature_header=common_pb2.SignatureHeader(creator=identity).SerializeToString(),
            signature=signature,
        )
    while len(block.metadata.metadata) <= SIGNATURES:
        block.metadata.metadata.append(b"")
    block.metadata.metadata[SIGNATURES] = metadata.SerializeToString()


@dataclass(frozen=True, slots=True)
class Certificate:
    round: int
    signatures: tuple[tuple[bytes, bytes], ...] = field(repr=False)  # (identity, signature)


def read_certificate(block: common_pb2.Block) -> Certificate | None:
    """The certificate stored in a block, or None when its metadata holds none."""
    try:
        metadata = common_pb2.Metadata.FromString(block.metadata.metadata[SIGNATURES])
        info = common_pb2.OrdererBlockMetadata.FromString(metadata.value)
    except (DecodeError, IndexError):
        return None
    tag = bytes(info.consenter_metadata)
    if not tag.startswith(DOMAIN_TAG) or len(tag) != len(DOMAIN_TAG) + 8:
        return None
    pairs = []
    for item in metadata.signatures:
        try:
            header = common_pb2.SignatureHeader.FromString(item.signature_header)
        except DecodeError:
            return None
        pairs.append((bytes(header.creator), bytes(item.signature)))
    return Certificate(int.from_bytes(tag[len(DOMAIN_TAG) :], "big"), tuple(pairs))


def certificate_problem(
    block: common_pb2.Block,
    channel: str,
    consenters: Sequence[Consenter],
    msps: MspManager,
    *,
    at: dt.datetime,
) -> str | None:
    """Why `block` lacks a valid commit certificate of `consenters`, or None if it has one.

    Every signature present must verify (a broken one is tampering even if a quorum remains);
    signers must be distinct consenters with identities valid at `at`.
    """
    if not consenters:
        return "the channel configuration names no consenters"
    certificate = read_certificate(block)
    if certificate is None:
        return "no commit certificate in the block's SIGNATURES metadata"
    by_identity = {c.identity: c for c in consenters}
    signed = precommit_bytes(channel, block, certificate.round)
    seen: set[str] = set()
    for identity, signature in certificate.signatures:
        consenter = by_identity.get(identity)
        if consenter is None:
            return "a certificate signature is not from a consenter of the channel"
        if consenter.name in seen:
            return f"{consenter.name} signed the certificate twice"
        try:
            signer = msps.deserialize(identity, at=at)
        except MedallianceError as exc:
            return f"{consenter.name}'s identity is not valid: {exc}"
        if not signer.verify(signature, signed):
            return f"the signature of {consenter.name} does not verify"
        seen.add(consenter.name)
    needed = quorum(len(consenters))
    if len(seen) < needed:
        return f"{len(seen)} consenters signed; a quorum of {len(consenters)} is {needed}"
    return None
