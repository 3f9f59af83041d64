"""The embedded network's replicas order a config update that votes a consenter out: they put it
in force themselves, the one voted out retires, and the next block is certified by the new set
alone. Real config update (admins' signatures), real signatures, blocks as peers receive them.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from fabric_protos.common import common_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from tests.conftest import NOW
from tests.unit.consensus.test_replica import transaction
from tests.unit.node.test_bft_channel_supervision import MEMBERS, ORDERERS

from medalliance.errors import InvalidArgument
from medalliance.ledger.block import header_hash
from medalliance.ledger.channel_config import (
    ChannelConfig,
    ChannelDefinition,
    OrgDefinition,
    build_config,
    genesis_block,
)
from medalliance.ledger.commit_certificate import Consenter, read_certificate
from medalliance.ledger.config_update import (
    CONFIG_UPDATE,
    is_config_block,
    propose_update,
    sign_update,
    update_envelope,
)
from medalliance.ledger.tx import compute_tx_id, sign_envelope
from medalliance.node.embedded_ordering import EmbeddedOrdering

SIGNERS = [ORDERERS.signer(f"orderer{i}", ou="orderer") for i in range(2)]
ADMINS = [MEMBERS.signer("Admin", ou="admin"), ORDERERS.signer("Admin", ou="admin")]


def channel_config() -> tuple[ChannelConfig, common_pb2.Block]:
    consenters = tuple(
        Consenter(i + 1, f"orderer{i}", "127.0.0.1", 7050 + i, "OrdMSP", s.serialized_identity)
        for i, s in enumerate(SIGNERS)
    )
    definition = ChannelDefinition(
        channel_id="ch",
        application_orgs=(OrgDefinition("Org1MSP", MEMBERS.msp, "tertiary", None, None, ()),),
        orderer_orgs=(OrgDefinition("OrdMSP", ORDERERS.msp, "orderer", None, None, ()),),
        batch_timeout_ms=50,
        consenters=tuple(f"127.0.0.1:{c.port}" for c in consenters),
        consenter_set=consenters,
    )
    block = genesis_block(definition, timestamp_ms=int(NOW.timestamp() * 1000))
    return ChannelConfig.from_block(block), block


def remove_second_consenter(current: ChannelConfig) -> bytes:
    """A CONFIG_UPDATE transaction keeping only the first consenter, signed by both admins."""
    definition = current.definition()
    kept = replace(
        definition,
        consenters=definition.consenters[:1],
        consenter_set=definition.consenter_set[:1],
    )
    update = propose_update(current, build_config(kept).channel_group)
    signatures = [sign_update(update, admin, os.urandom(24)) for admin in ADMINS]
    creator, nonce = ADMINS[0], os.urandom(24)
    header = common_pb2.ChannelHeader(
        type=CONFIG_UPDATE,
        channel_id="ch",
        tx_id=compute_tx_id(nonce, creator.serialized_identity),
        timestamp=Timestamp(seconds=int(NOW.timestamp())),
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(
                creator=creator.serialized_identity, nonce=nonce
            ).SerializeToString(),
        ),
        data=update_envelope(update, signatures).SerializeToString(),
    )
    return sign_envelope(payload.SerializeToString(), creator)


def test_a_consenter_voted_out_retires_and_the_next_block_is_certified_by_the_new_set() -> None:
    config, genesis = channel_config()
    delivered: list[common_pb2.Block] = []
    ordering = EmbeddedOrdering(
        config,
        SIGNERS,
        delivered.append,
        next_number=1,
        previous_hash=header_hash(genesis.header),
        clock=lambda: NOW,
    )
    update = remove_second_consenter(config)
    ordering.broadcast(update, now=NOW)
    ordering.flush()
    assert [is_config_block(b) for b in delivered] == [True]
    first, second = (m.replica for m in ordering.members.values())
    assert not first.retired
    assert second.retired  # it decided the block that voted it out, and stopped there
    assert [c.name for c in ordering.config.consenter_set] == [config.consenter_set[0].name]
    with pytest.raises(InvalidArgument, match="made for sequence"):  # a replayed update
        ordering.broadcast(update, now=NOW)
    ordering.broadcast(transaction("after"), now=NOW)
    ordering.flush()
    assert len(delivered) == 2
    certificate = read_certificate(delivered[1])
    assert certificate is not None
    assert len(certificate.signatures) == 1  # the quorum of the new set of one
    assert ordering.config.certificate_problem(delivered[1]) is None
    assert config.certificate_problem(delivered[1]) is not None  # short of the old quorum
