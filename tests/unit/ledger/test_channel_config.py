"""Channel configuration: genesis blocks in Fabric's layout, parsing back, policy evaluation."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from fabric_protos.common import common_pb2, configtx_pb2, configuration_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_pb2
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org, make_org

from medalliance.errors import InvalidArgument, MalformedMessage, NotFound, UnknownPolicy
from medalliance.identity.ca import NodeOU
from medalliance.identity.policy import SignedData
from medalliance.ledger.block import data_hash
from medalliance.ledger.channel_config import (
    ALLIANCE_VALUE,
    ChannelConfig,
    ChannelDefinition,
    OrgDefinition,
    build_config,
    genesis_block,
    parse_duration_ms,
)

TIMESTAMP_MS = 1_795_000_000_123
ORG_IDS = ("RegMSP", "TAMSP", "TBMSP", "SAMSP", "OrdMSP", "StrangerMSP")


@pytest.fixture(scope="module")
def orgs() -> dict[str, Org]:
    return {msp_id: make_org(msp_id) for msp_id in ORG_IDS}


def definition(orgs: dict[str, Org], **changes: object) -> ChannelDefinition:
    def org(msp_id: str, kind: str, endpoint: str, regulator: str | None = None) -> OrgDefinition:
        return OrgDefinition(msp_id, orgs[msp_id].msp, kind, regulator, None, (endpoint,))

    defn = ChannelDefinition(
        channel_id="alliance",
        application_orgs=(
            org("RegMSP", "regulator", "127.0.0.1:7051"),
            org("SAMSP", "secondary", "127.0.0.1:7451", "RegMSP"),
            org("TAMSP", "tertiary", "127.0.0.1:7151", "RegMSP"),
            org("TBMSP", "tertiary", "127.0.0.1:7251", "RegMSP"),
        ),
        orderer_orgs=(
            org("OrdMSP", "orderer", "127.0.0.1:7150"),
            org("TAMSP", "tertiary", "127.0.0.1:7050", "RegMSP"),
        ),
        batch_max_count=10,
        batch_absolute_max_bytes=4096,
        batch_preferred_max_bytes=2048,
        batch_timeout_ms=250,
        consenters=("127.0.0.1:7050", "127.0.0.1:7150"),
    )
    return replace(defn, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def config(orgs: dict[str, Org]) -> ChannelConfig:
    return ChannelConfig.from_block(genesis_block(definition(orgs), timestamp_ms=TIMESTAMP_MS))


@pytest.fixture(scope="module")
def sign(orgs: dict[str, Org]) -> Callable[[str, NodeOU], SignedData]:
    """Signed data by a fresh identity of `msp_id` with node OU `ou` (cached per pair)."""
    cache: dict[tuple[str, NodeOU], SignedData] = {}

    def make(msp_id: str, ou: NodeOU) -> SignedData:
        if (msp_id, ou) not in cache:
            signer = orgs[msp_id].signer(f"{ou}1", ou=ou)
            cache[(msp_id, ou)] = SignedData(
                b"data", signer.serialized_identity, signer.sign(b"data")
            )
        return cache[(msp_id, ou)]

    return make


# --- round trip and layout -------------------------------------------------------------------


def test_a_genesis_block_parses_back_to_the_definition_it_was_built_from(
    orgs: dict[str, Org], config: ChannelConfig
) -> None:
    assert config.definition() == definition(orgs)
    assert config.channel_id == "alliance"
    assert config.sequence == 0
    assert config.application_msp_ids == ("RegMSP", "SAMSP", "TAMSP", "TBMSP")
    assert config.orderer_msp_ids == ("OrdMSP", "TAMSP")
    assert set(config.msps.msp_ids) == {"RegMSP", "SAMSP", "TAMSP", "TBMSP", "OrdMSP"}


def test_an_org_in_both_groups_is_listed_once_with_its_peer_endpoints(
    config: ChannelConfig,
) -> None:
    assert config.orgs["TAMSP"].endpoints == ("127.0.0.1:7151",)
    assert config.orgs["TAMSP"].regulator == "RegMSP"
    assert config.orgs["OrdMSP"].alliance_type == "orderer"


def test_the_genesis_block_is_block_zero_with_one_unsigned_config_envelope(
    orgs: dict[str, Org],
) -> None:
    block = genesis_block(definition(orgs), timestamp_ms=TIMESTAMP_MS)
    assert block.header.number == 0
    assert block.header.previous_hash == b""
    assert len(block.data.data) == 1
    assert block.header.data_hash == data_hash([block.data.data[0]])
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    assert envelope.signature == b""
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert (header.type, header.version, header.channel_id, header.tx_id) == (1, 1, "alliance", "")
    assert header.timestamp.seconds * 1000 + header.timestamp.nanos // 1_000_000 == TIMESTAMP_MS
    metadata = common_pb2.Metadata.FromString(block.metadata.metadata[0])
    assert common_pb2.OrdererBlockMetadata.FromString(metadata.value).last_config.index == 0
    assert len(block.metadata.metadata) == 5


def test_genesis_blocks_are_deterministic(orgs: dict[str, Org]) -> None:
    first = genesis_block(definition(orgs), timestamp_ms=TIMESTAMP_MS)
    second = genesis_block(definition(orgs), timestamp_ms=TIMESTAMP_MS)
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(
        deterministic=True
    )


def test_the_config_tree_follows_fabrics_layout(orgs: dict[str, Org]) -> None:
    root = build_config(definition(orgs)).channel_group
    assert set(root.groups) == {"Application", "Orderer"}
    assert set(root.values) == {
        "HashingAlgorithm",
        "BlockDataHashingStructure",
        "OrdererAddresses",
        "Capabilities",
    }
    assert configuration_pb2.HashingAlgorithm.FromString(
        root.values["HashingAlgorithm"].value
    ).name == ("SHA256")
    width = configuration_pb2.BlockDataHashingStructure.FromString(
        root.values["BlockDataHashingStructure"].value
    ).width
    assert width == 2**32 - 1
    orderer = root.groups["Orderer"]
    assert orderer_pb2.ConsensusType.FromString(orderer.values["ConsensusType"].value).type == "BFT"
    assert (
        orderer_pb2.BatchTimeout.FromString(orderer.values["BatchTimeout"].value).timeout == "250ms"
    )
    app_caps = configuration_pb2.Capabilities.FromString(
        root.groups["Application"].values["Capabilities"].value
    )
    assert set(app_caps.capabilities) == {"V2_0"}
    org = root.groups["Application"].groups["SAMSP"]
    assert set(org.policies) == {"Readers", "Writers", "Admins", "Endorsement"}
    assert json.loads(org.values[ALLIANCE_VALUE].value) == {
        "type": "secondary",
        "regulator": "RegMSP",
        "parent": None,
    }
    assert b" " not in org.values[ALLIANCE_VALUE].value  # compact JSON


def test_every_group_value_and_policy_is_modified_by_admins(orgs: dict[str, Org]) -> None:
    def walk(group: configtx_pb2.ConfigGroup) -> list[str]:
        found = [group.mod_policy]
        found += [v.mod_policy for v in group.values.values()]
        found += [p.mod_policy for p in group.policies.values()]
        for sub in group.groups.values():
            found += walk(sub)
        return found

    assert set(walk(build_config(definition(orgs)).channel_group)) == {"Admins"}


# --- policy evaluation -----------------------------------------------------------------------

WRITERS = "/Channel/Application/Writers"
ENDORSEMENT = "/Channel/Application/Endorsement"
LIFECYCLE = "/Channel/Application/LifecycleEndorsement"
BLOCK_VALIDATION = "/Channel/Orderer/BlockValidation"


@pytest.mark.parametrize(
    ("path", "signers", "expected"),
    [
        pytest.param(WRITERS, [("SAMSP", "client")], True, id="a member's client may write"),
        pytest.param(WRITERS, [("RegMSP", "admin")], True, id="a member's admin may write"),
        pytest.param(WRITERS, [("SAMSP", "peer")], False, id="a peer alone may not write"),
        pytest.param(WRITERS, [("StrangerMSP", "client")], False, id="a non-member may not write"),
        pytest.param(WRITERS, [], False, id="nobody signing satisfies nothing"),
        pytest.param("/Channel/Writers", [("TBMSP", "client")], True, id="channel writers admit application clients"),
        pytest.param("/Channel/Writers", [("TBMSP", "admin")], True, id="channel writers admit application admins"),
        pytest.param("/Channel/Readers", [("RegMSP", "peer")], True, id="a regulator's audit peer may read"),
        pytest.param(ENDORSEMENT, [("TAMSP", "peer"), ("TBMSP", "peer")], False, id="two of four peers are no endorsement majority"),
        pytest.param(ENDORSEMENT, [("TAMSP", "peer"), ("TBMSP", "peer"), ("SAMSP", "peer")], True, id="three of four peers are an endorsement majority"),
        pytest.param(ENDORSEMENT, [("TAMSP", "client"), ("TBMSP", "client"), ("SAMSP", "client")], False, id="clients do not endorse"),
        pytest.param(LIFECYCLE, [("RegMSP", "peer"), ("TBMSP", "peer"), ("SAMSP", "peer")], True, id="lifecycle endorsement is a majority of peers"),
        pytest.param(LIFECYCLE, [("RegMSP", "peer"), ("RegMSP", "peer"), ("SAMSP", "peer")], False, id="a repeated signer counts once"),
        pytest.param("/Channel/Application/TAMSP/Admins", [("TAMSP", "admin")], True, id="an org's admin satisfies its Admins"),
        pytest.param("/Channel/Application/TAMSP/Admins", [("TBMSP", "admin")], False, id="another org's admin does not"),
        pytest.param("/Channel/Application/Admins", [("TAMSP", "admin"), ("TBMSP", "admin")], False, id="two of four admins are no admin majority"),
        pytest.param(BLOCK_VALIDATION, [("TAMSP", "orderer")], True, id="a tertiary hospital's orderer validates blocks"),
        pytest.param(BLOCK_VALIDATION, [("OrdMSP", "orderer")], True, id="an ordering org's orderer validates blocks"),
        pytest.param(BLOCK_VALIDATION, [("SAMSP", "peer")], False, id="a non-ordering org cannot sign blocks"),
        pytest.param(BLOCK_VALIDATION, [("StrangerMSP", "orderer")], False, id="a stranger's orderer cannot sign blocks"),
    ],
)  # fmt: skip
def test_policies_are_evaluated_through_their_paths(
    config: ChannelConfig,
    sign: Callable[[str, NodeOU], SignedData],
    path: str,
    signers: list[tuple[str, NodeOU]],
    expected: bool,
) -> None:
    signed = [sign(msp_id, ou) for msp_id, ou in signers]
    assert config.evaluate_policy(path, signed, at=NOW) is expected


def test_a_bad_signature_is_ignored(
    config: ChannelConfig, sign: Callable[[str, NodeOU], SignedData]
) -> None:
    good = sign("SAMSP", "client")
    assert not config.evaluate_policy(WRITERS, [replace(good, data=b"other")], at=NOW)


def test_a_forged_signature_in_an_endorsement_majority_does_not_count(
    config: ChannelConfig, sign: Callable[[str, NodeOU], SignedData]
) -> None:
    # The signatures are verified once for all four sub-policies: a forged one stays forged.
    honest = [sign("TAMSP", "peer"), sign("TBMSP", "peer")]
    forged = replace(sign("SAMSP", "peer"), data=b"another proposal")
    assert not config.evaluate_policy(ENDORSEMENT, [*honest, forged], at=NOW)
    assert not config.evaluate_policy(ENDORSEMENT, [forged, *honest], at=NOW)
    assert config.evaluate_policy(ENDORSEMENT, [forged, *honest, sign("SAMSP", "peer")], at=NOW)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/Channel/Application/Nope", id="an unknown policy name"),
        pytest.param("/Channel/Application/StrangerMSP/Admins", id="an org outside the channel"),
        pytest.param("Application/Writers", id="a path without its /Channel root"),
    ],
)
def test_an_unknown_policy_path_is_not_found_and_named(config: ChannelConfig, path: str) -> None:
    with pytest.raises(UnknownPolicy) as raised:
        config.evaluate_policy(path, [], at=NOW)
    assert isinstance(raised.value, NotFound)
    assert path in str(raised.value)


def test_a_sub_group_without_the_sub_policy_counts_as_unsatisfied(
    orgs: dict[str, Org], sign: Callable[[str, NodeOU], SignedData]
) -> None:
    tree = build_config(definition(orgs))
    app = tree.channel_group.groups["Application"]
    for msp_id in ("RegMSP", "SAMSP"):
        del app.groups[msp_id].policies["Endorsement"]
    config = ChannelConfig.from_config(tree, "alliance")
    peers = [sign("TAMSP", "peer"), sign("TBMSP", "peer")]
    # Fabric's implicitmeta.go: MAJORITY of all four groups is three, whatever they define.
    assert not config.evaluate_policy(ENDORSEMENT, peers, at=NOW)


def test_policy_overrides_replace_defaults(
    orgs: dict[str, Org], sign: Callable[[str, NodeOU], SignedData]
) -> None:
    defn = definition(
        orgs,
        policy_overrides=(
            ("Application/Endorsement", "ANY Endorsement"),
            ("/Channel/Application/Admins", "OR('RegMSP.admin')"),
        ),
    )
    config = ChannelConfig.from_block(genesis_block(defn, timestamp_ms=TIMESTAMP_MS))
    assert config.evaluate_policy(ENDORSEMENT, [sign("TAMSP", "peer")], at=NOW)
    assert config.evaluate_policy("/Channel/Application/Admins", [sign("RegMSP", "admin")], at=NOW)


def test_an_override_for_a_missing_group_is_rejected(orgs: dict[str, Org]) -> None:
    defn = definition(orgs, policy_overrides=(("Consortiums/Admins", "ANY Admins"),))
    with pytest.raises(InvalidArgument, match="no group Consortiums"):
        build_config(defn)


# --- malformed blocks ------------------------------------------------------------------------


def _no_data(block: common_pb2.Block) -> None:
    del block.data.data[:]


def _two_envelopes(block: common_pb2.Block) -> None:
    block.data.data.append(block.data.data[0])


def _garbage(block: common_pb2.Block) -> None:
    block.data.data[0] = b"\xff\xff\xff"


def _endorser_transaction(block: common_pb2.Block) -> None:
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    header.type = common_pb2.HeaderType.Value("ENDORSER_TRANSACTION")
    payload.header.channel_header = header.SerializeToString()
    envelope.payload = payload.SerializeToString()
    block.data.data[0] = envelope.SerializeToString()


def _config_edit(edit: Callable[[configtx_pb2.Config], None]) -> Callable[[common_pb2.Block], None]:
    """A corruption that edits the config tree inside the block's envelope."""

    def apply(block: common_pb2.Block) -> None:
        envelope = common_pb2.Envelope.FromString(block.data.data[0])
        payload = common_pb2.Payload.FromString(envelope.payload)
        config_envelope = configtx_pb2.ConfigEnvelope.FromString(payload.data)
        edit(config_envelope.config)
        payload.data = config_envelope.SerializeToString()
        envelope.payload = payload.SerializeToString()
        block.data.data[0] = envelope.SerializeToString()

    return apply


def _set_timeout(config: configtx_pb2.Config) -> None:
    value = config.channel_group.groups["Orderer"].values["BatchTimeout"]
    value.value = orderer_pb2.BatchTimeout(timeout="soon").SerializeToString()


def _set_msp(config: configtx_pb2.Config) -> None:
    config.channel_group.groups["Application"].groups["SAMSP"].values["MSP"].value = b"\x0a\x05"


def _set_alliance(config: configtx_pb2.Config) -> None:
    group = config.channel_group.groups["Application"].groups["SAMSP"]
    group.values[ALLIANCE_VALUE].value = b"{not json"


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        pytest.param(_no_data, "0 transactions", id="a block with no transactions"),
        pytest.param(_two_envelopes, "2 transactions", id="a block with two transactions"),
        pytest.param(_garbage, "Envelope", id="bytes that are not an envelope"),
        pytest.param(_endorser_transaction, "not CONFIG", id="a block of an ordinary transaction"),
        pytest.param(_config_edit(lambda c: c.channel_group.groups.pop("Orderer")), "no Orderer group", id="a config without an Orderer group"),
        pytest.param(_config_edit(lambda c: c.channel_group.groups.pop("Application")), "no Application group", id="a config without an Application group"),
        pytest.param(_config_edit(lambda c: c.channel_group.groups["Orderer"].values.pop("BatchSize")), "no BatchSize", id="an orderer group without BatchSize"),
        pytest.param(_config_edit(_set_timeout), "'soon'", id="a batch timeout that is no duration"),
        pytest.param(_config_edit(lambda c: c.channel_group.groups["Application"].groups["SAMSP"].values.pop("MSP")), "SAMSP group has no MSP value", id="an organisation without an MSP"),
        pytest.param(_config_edit(_set_msp), "", id="an MSP value that does not decode"),
        pytest.param(_config_edit(_set_alliance), "not JSON", id="an alliance value that is not JSON"),
    ],
)  # fmt: skip
def test_a_malformed_config_block_is_rejected_saying_what_is_wrong(
    orgs: dict[str, Org], corrupt: Callable[[common_pb2.Block], None], message: str
) -> None:
    block = genesis_block(definition(orgs), timestamp_ms=TIMESTAMP_MS)
    corrupt(block)
    with pytest.raises(MalformedMessage) as raised:
        ChannelConfig.from_block(block)
    assert message in str(raised.value)


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        pytest.param("200ms", 200, id="milliseconds"),
        pytest.param("2s", 2000, id="seconds"),
        pytest.param("1m30s", 90_000, id="minutes and seconds"),
        pytest.param("1.5s", 1500, id="fractional seconds"),
        pytest.param("500000us", 500, id="microseconds"),
    ],
)
def test_batch_timeouts_read_go_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@given(st.text(max_size=20))
def test_any_text_either_is_a_duration_or_is_rejected_as_malformed(text: str) -> None:
    with contextlib.suppress(MalformedMessage):
        assert parse_duration_ms(text) >= 0
