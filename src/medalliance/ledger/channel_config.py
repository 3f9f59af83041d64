"""Channel configuration as Fabric's `common.Config` tree: build a genesis block, parse it back.

Pure. The tree follows Fabric's layout — `Channel` with `Application` (one group per member
organisation with its `MSP` value and Readers/Writers/Admins/Endorsement policies) and `Orderer`
(ordering organisations, ConsensusType, BatchSize, BatchTimeout, BlockValidation) — so Fabric's
tools can read it. medalliance adds one value per organisation, `AllianceOrganization`: compact
JSON `{"type", "regulator", "parent"}` carrying the paper's roles.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fabric_protos.common import (
    common_pb2,
    configtx_pb2,
    configuration_pb2,
    policies_pb2,
)
from fabric_protos.orderer import configuration_pb2 as orderer_pb2
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from medalliance.errors import MalformedMessage, NotFound
from medalliance.identity.msp import Msp, MspManager
from medalliance.identity.policy import (
    SignedData,
    evaluate_implicit_meta,
    evaluate_signature_policy,
    parse_policy,
)
from medalliance.ledger.block import new_block

ALLIANCE_VALUE = "AllianceOrganization"
_SIGNATURE = policies_pb2.Policy.PolicyType.Value("SIGNATURE")
_IMPLICIT = policies_pb2.Policy.PolicyType.Value("IMPLICIT_META")
_RULES: dict[str, int] = dict(policies_pb2.ImplicitMetaPolicy.Rule.items())


@dataclass(frozen=True, slots=True)
class OrgDefinition:
    msp_id: str
    msp: Msp
    alliance_type: str
    regulator: str | None = None
    parent: str | None = None
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelDefinition:
    channel_id: str
    application_orgs: tuple[OrgDefinition, ...]
    orderer_orgs: tuple[OrgDefinition, ...]
    batch_max_count: int = 500
    batch_absolute_max_bytes: int = 10 * 1024 * 1024
    batch_preferred_max_bytes: int = 2 * 1024 * 1024
    batch_timeout_ms: int = 200
    consenters: tuple[str, ...] = ()


# --- building --------------------------------------------------------------------------------


def _value(message: object) -> configtx_pb2.ConfigValue:
    return configtx_pb2.ConfigValue(value=message.SerializeToString(), mod_policy="Admins")  # type: ignore[attr-defined]


def _signature(text: str) -> configtx_pb2.ConfigPolicy:
    policy = policies_pb2.Policy(type=_SIGNATURE, value=parse_policy(text).SerializeToString())
    return configtx_pb2.ConfigPolicy(policy=policy, mod_policy="Admins")


def _implicit(
    rule: Literal["ANY", "ALL", "MAJORITY"], sub_policy: str
) -> configtx_pb2.ConfigPolicy:
    meta = policies_pb2.ImplicitMetaPolicy(sub_policy=sub_policy, rule=_RULES[rule])
    return configtx_pb2.ConfigPolicy(
        policy=policies_pb2.Policy(type=_IMPLICIT, value=meta.SerializeToString()),
        mod_policy="Admins",
    )


def _capabilities(name: str) -> configtx_pb2.ConfigValue:
    return _value(
        configuration_pb2.Capabilities(capabilities={name: configuration_pb2.Capability()})
    )


def _org_group(org: OrgDefinition, *, orderer: bool) -> configtx_pb2.ConfigGroup:
    m = org.msp_id
    group = configtx_pb2.ConfigGroup(mod_policy="Admins")
    group.values["MSP"].CopyFrom(
        configtx_pb2.ConfigValue(value=org.msp.to_proto_bytes(), mod_policy="Admins")
    )
    alliance = json.dumps(
        {"type": org.alliance_type, "regulator": org.regulator, "parent": org.parent},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    group.values[ALLIANCE_VALUE].CopyFrom(
        configtx_pb2.ConfigValue(value=alliance, mod_policy="Admins")
    )
    if orderer:
        group.values["Endpoints"].CopyFrom(
            _value(configuration_pb2.OrdererAddresses(addresses=org.endpoints))
        )
        policies = {
            "Readers": f"OR('{m}.member')",
            "Writers": f"OR('{m}.member')",
            "Admins": f"OR('{m}.admin')",
        }
    else:
        policies = {
            "Readers": f"OR('{m}.admin', '{m}.peer', '{m}.client')",
            "Writers": f"OR('{m}.admin', '{m}.client')",
            "Admins": f"OR('{m}.admin')",
            "Endorsement": f"OR('{m}.peer')",
        }
    for name, text in policies.items():
        group.policies[name].CopyFrom(_signature(text))
    return group


def build_config(defn: ChannelDefinition) -> configtx_pb2.Config:
    app = configtx_pb2.ConfigGroup(mod_policy="Admins")
    for org in defn.application_orgs:
        app.groups[org.msp_id].CopyFrom(_org_group(org, orderer=False))
    for name, rule, sub in (
        ("Readers", "ANY", "Readers"),
        ("Writers", "ANY", "Writers"),
        ("Admins", "MAJORITY", "Admins"),
        ("Endorsement", "MAJORITY", "Endorsement"),
        ("LifecycleEndorsement", "MAJORITY", "Endorsement"),
    ):
        app.policies[name].CopyFrom(_implicit(rule, sub))  # type: ignore[arg-type]
    app.values["Capabilities"].CopyFrom(_capabilities("V2_0"))

    orderer = configtx_pb2.ConfigGroup(mod_policy="Admins")
    for org in defn.orderer_orgs:
        orderer.groups[org.msp_id].CopyFrom(_org_group(org, orderer=True))
    for name, rule, sub in (
        ("Readers", "ANY", "Readers"),
        ("Writers", "ANY", "Writers"),
        ("Admins", "MAJORITY", "Admins"),
        ("BlockValidation", "ANY", "Writers"),
    ):
        orderer.policies[name].CopyFrom(_implicit(rule, sub))  # type: ignore[arg-type]
    orderer.values["ConsensusType"].CopyFrom(_value(orderer_pb2.ConsensusType(type="BFT")))
    orderer.values["BatchSize"].CopyFrom(
        _value(
            orderer_pb2.BatchSize(
                max_message_count=defn.batch_max_count,
                absolute_max_bytes=defn.batch_absolute_max_bytes,
                preferred_max_bytes=defn.batch_preferred_max_bytes,
            )
        )
    )
    orderer.values["BatchTimeout"].CopyFrom(
        _value(orderer_pb2.BatchTimeout(timeout=f"{defn.batch_timeout_ms}ms"))
    )
    orderer.values["Capabilities"].CopyFrom(_capabilities("V2_0"))

    channel = configtx_pb2.ConfigGroup(mod_policy="Admins")
    channel.groups["Application"].CopyFrom(app)
    channel.groups["Orderer"].CopyFrom(orderer)
    channel.values["HashingAlgorithm"].CopyFrom(
        _value(configuration_pb2.HashingAlgorithm(name="SHA256"))
    )
    channel.values["BlockDataHashingStructure"].CopyFrom(
        _value(configuration_pb2.BlockDataHashingStructure(width=2**32 - 1))
    )
    channel.values["OrdererAddresses"].CopyFrom(
        _value(configuration_pb2.OrdererAddresses(addresses=defn.consenters))
    )
    channel.values["Capabilities"].CopyFrom(_capabilities("V3_0"))
    for name, rule, sub in (
        ("Readers", "ANY", "Readers"),
        ("Writers", "ANY", "Writers"),
        ("Admins", "MAJORITY", "Admins"),
    ):
        channel.policies[name].CopyFrom(_implicit(rule, sub))  # type: ignore[arg-type]
    return configtx_pb2.Config(sequence=0, channel_group=channel)


def genesis_block(defn: ChannelDefinition, *, timestamp_ms: int) -> common_pb2.Block:
    """Block 0: one unsigned CONFIG envelope holding the configuration, as configtxgen makes it."""
    header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.Value("CONFIG"),
        version=1,
        channel_id=defn.channel_id,
        timestamp=Timestamp(seconds=timestamp_ms // 1000, nanos=(timestamp_ms % 1000) * 1_000_000),
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader().SerializeToString(),
        ),
        data=configtx_pb2.ConfigEnvelope(config=build_config(defn)).SerializeToString(),
    )
    envelope = common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()
    block = new_block(0, b"", [envelope])
    value = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=0)
    ).SerializeToString()
    block.metadata.metadata[common_pb2.BlockMetadataIndex.Value("SIGNATURES")] = (
        common_pb2.Metadata(value=value).SerializeToString()
    )
    return block


# --- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Policy:
    kind: Literal["signature", "implicit"]
    envelope: policies_pb2.SignaturePolicyEnvelope | None = None
    sub_policy: str = ""
    rule: Literal["ANY", "ALL", "MAJORITY"] = "ANY"


class ChannelConfig:
    """A parsed channel configuration: members, MSPs, batch settings and policy evaluation."""

    def __init__(self, channel_id: str, config: configtx_pb2.Config) -> None:
        self.channel_id = channel_id
        self.sequence = int(config.sequence)
        root = config.channel_group
        try:
            app, orderer = root.groups["Application"], root.groups["Orderer"]
            self.orgs: Mapping[str, OrgDefinition] = {
                **{m: _org(m, g) for m, g in orderer.groups.items()},
                **{m: _org(m, g) for m, g in app.groups.items()},
            }
            self.application_msp_ids = tuple(sorted(app.groups))
            self.orderer_msp_ids = tuple(sorted(orderer.groups))
            batch = _parse(orderer_pb2.BatchSize(), orderer.values["BatchSize"].value)
            timeout = _parse(
                orderer_pb2.BatchTimeout(), orderer.values["BatchTimeout"].value
            ).timeout
            self.consenters = tuple(
                _parse(
                    configuration_pb2.OrdererAddresses(), root.values["OrdererAddresses"].value
                ).addresses
            )
        except KeyError as exc:
            raise MalformedMessage("channel configuration", f"missing {exc}") from exc
        self.batch_max_count = int(batch.max_message_count)
        self.batch_absolute_max_bytes = int(batch.absolute_max_bytes)
        self.batch_preferred_max_bytes = int(batch.preferred_max_bytes)
        self.batch_timeout_ms = _duration_ms(str(timeout))
        self.msps = MspManager(o.msp for o in self.orgs.values())
        self._groups: dict[str, configtx_pb2.ConfigGroup] = {}
        self._policies: dict[str, _Policy] = {}
        self._index("/Channel", root)

    @classmethod
    def from_block(cls, block: common_pb2.Block) -> ChannelConfig:
        envelope, payload, header = (
            common_pb2.Envelope(),
            common_pb2.Payload(),
            common_pb2.ChannelHeader(),
        )
        config_envelope = configtx_pb2.ConfigEnvelope()
        try:
            envelope.ParseFromString(block.data.data[0])
            payload.ParseFromString(envelope.payload)
            header.ParseFromString(payload.header.channel_header)
            config_envelope.ParseFromString(payload.data)
        except (DecodeError, IndexError) as exc:
            raise MalformedMessage("config block", str(exc)) from exc
        if header.type != common_pb2.HeaderType.Value("CONFIG"):
            raise MalformedMessage("config block", "its transaction is not a CONFIG transaction")
        return cls(str(header.channel_id), config_envelope.config)

    def _index(self, path: str, group: configtx_pb2.ConfigGroup) -> None:
        self._groups[path] = group
        for name, cp in group.policies.items():
            policy = cp.policy
            if policy.type == _SIGNATURE:
                self._policies[f"{path}/{name}"] = _Policy(
                    "signature",
                    envelope=_parse(policies_pb2.SignaturePolicyEnvelope(), policy.value),
                )
            elif policy.type == _IMPLICIT:
                meta = _parse(policies_pb2.ImplicitMetaPolicy(), policy.value)
                rule = policies_pb2.ImplicitMetaPolicy.Rule.Name(meta.rule)
                self._policies[f"{path}/{name}"] = _Policy(
                    "implicit", sub_policy=str(meta.sub_policy), rule=rule
                )
        for name, sub in group.groups.items():
            self._index(f"{path}/{name}", sub)

    def evaluate_policy(self, path: str, signed: Sequence[SignedData], *, at: dt.datetime) -> bool:
        """Whether `signed` satisfies the policy at `path`, e.g. `/Channel/Application/Writers`."""
        policy = self._policies.get(path)
        if policy is None:
            raise NotFound(f"channel {self.channel_id} has no policy {path}")
        if policy.kind == "signature":
            assert policy.envelope is not None
            return evaluate_signature_policy(policy.envelope, signed, self.msps, at=at)
        group_path = path.rsplit("/", 1)[0]
        subs = [
            self.evaluate_policy(f"{group_path}/{name}/{policy.sub_policy}", signed, at=at)
            for name in sorted(self._groups[group_path].groups)
            if f"{group_path}/{name}/{policy.sub_policy}" in self._policies
        ]
        return evaluate_implicit_meta(policy.rule, subs)


def _org(msp_id: str, group: configtx_pb2.ConfigGroup) -> OrgDefinition:
    alliance = (
        json.loads(group.values[ALLIANCE_VALUE].value) if ALLIANCE_VALUE in group.values else {}
    )
    endpoints: tuple[str, ...] = ()
    if "Endpoints" in group.values:
        endpoints = tuple(
            _parse(configuration_pb2.OrdererAddresses(), group.values["Endpoints"].value).addresses
        )
    return OrgDefinition(
        msp_id=msp_id,
        msp=Msp.from_proto_bytes(group.values["MSP"].value),
        alliance_type=str(alliance.get("type", "")),
        regulator=alliance.get("regulator"),
        parent=alliance.get("parent"),
        endpoints=endpoints,
    )


def _parse(message: Any, data: bytes) -> Any:
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise MalformedMessage(type(message).__name__, str(exc)) from exc
    return message


def _duration_ms(text: str) -> int:
    for suffix, factor in (("ms", 1), ("s", 1000), ("m", 60_000)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * factor
    raise MalformedMessage(
        "channel configuration", f"batch timeout {text!r} is not like 200ms or 2s"
    )
