"""A stored block with its commit certificate, as the consensus core sees it (pure).

The core knows a decided height by its value (the header hash and the block without metadata)
and the precommits of its certificate; the ledger keeps the block with the certificate in its
metadata (`ledger/commit_certificate.py`). Used when the core starts (its last decision) and
for every block pulled from another ordering node.
"""

from __future__ import annotations

from collections.abc import Mapping

from fabric_protos.common import common_pb2

from medalliance.consensus.messages import Certificate, Kind, Value, Vote
from medalliance.consensus.ready import Commit
from medalliance.errors import InvalidArgument
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.commit_certificate import read_certificate


def decided_of(
    block: common_pb2.Block, channel_id: str, name_of: Mapping[bytes, str]
) -> tuple[Value, Certificate]:
    """The core's view of a stored, certified block: its value and its certificate
    (`name_of`: a consenter's name by its serialized identity)."""
    plain = new_block(
        int(block.header.number),
        bytes(block.header.previous_hash),
        [bytes(d) for d in block.data.data],
    )
    value = Value(header_hash(block.header), plain.SerializeToString())
    certificate = read_certificate(block)
    if certificate is None:
        raise InvalidArgument(f"block {block.header.number} has no commit certificate")
    votes = tuple(
        Vote(
            Kind.PRECOMMIT,
            channel_id,
            int(block.header.number),
            certificate.round,
            value.value_id,
            name_of[identity],
            signature,
        )
        for identity, signature in certificate.signatures
    )
    return value, Certificate(votes)


def last_decision(
    store: BlockStore, channel_id: str, name_of: Mapping[bytes, str]
) -> Commit | None:
    """The ledger's tip as a decision (None while only genesis is stored)."""
    tip = store.height - 1
    if tip < 1:
        return None
    value, certificate = decided_of(store.get_block(tip), channel_id, name_of)
    return Commit(tip, value, certificate)
