"""Channel configuration as Fabric's `common.Config` tree: build a genesis block, parse it back.

Pure: no files, no clock (the genesis timestamp is an argument). The tree follows Fabric's
layout so Fabric's tools can read it:

- `/Channel`: values HashingAlgorithm, BlockDataHashingStructure, OrdererAddresses, Capabilities;
  policies Readers/Writers (ImplicitMeta ANY), Admins (ImplicitMeta MAJORITY).
- `/Channel/Application`: one group per member organisation (value `MSP`, `AnchorPeers`; policies
  Readers, Writers, Admins, Endorsement), policies Readers/Writers ANY, Admins MAJORITY,
  Endorsement and LifecycleEndorsement MAJORITY Endorsement; Capabilities V2_0.
- `/Channel/Orderer`: one group per ordering organisation (value `MSP`, `Endpoints`; policies
  Readers/Writers `OR('X.member')`, Admins), ConsensusType BFT, BatchSize, BatchTimeout,
  policies Readers/Writers ANY, Admins MAJORITY, BlockValidation ANY Writers.

medalliance's one extension is a value per organisation, `AllianceOrganization`: compact JSON
`{"parent":..,"regulator":..,"type":..}` carrying the paper's roles (regulator, tertiary, ...).
Fabric ignores values it does not know, so the block stays readable by Fabric tools.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_pb2
from fabric_protos.peer import configuration_pb2 as peer_pb2
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from medalliance.errors import InvalidArgument, MalformedMessage, MedallianceError, UnknownPolicy
from medalliance.identity.msp import Identity, Msp, MspManager
from medalliance.identity.policy import (
    SignedData,
    compiles,
    decide_implicit_meta,
    identities_satisfy,
    parse_policy,
    valid_signers,
)
from medalliance.ledger.block import new_block
from medalliance.ledger.block_signature import block_time
from medalliance.ledger.commit_certificate import Consenter, certificate_problem
from medalliance.ledger.tx import EnvelopeView, MalformedTransaction

ALLIANCE_VALUE = "AllianceOrganization"
ADMINS = "Admins"  # every mod_policy, as Fabric's configtxgen writes them
_SIGNATURE = policies_pb2.Policy.PolicyType.Value("SIGNATURE")
_IMPLICIT = policies_pb2.Policy.PolicyType.Value("IMPLICIT_META")
_RULES: dict[str, int] = dict(policies_pb2.ImplicitMetaPolicy.Rule.items())
_IMPLICIT_TEXT = re.compile(r"^\s*(ANY|ALL|MAJORITY)\s+(\w+)\s*$")
_CONFIG_TYPE = common_pb2.HeaderType.Value("CONFIG")
ImplicitRule = Literal["ANY", "ALL", "MAJORITY"]


@dataclass(frozen=True, slots=True)
class OrgDefinition:
    """One organisation as a channel sees it. `regulator`/`parent` are MSP ids."""

    msp_id: str
    msp: Msp
    alliance_type: str  # regulator | tertiary | secondary | orderer
    regulator: str | None = None
    parent: str | None = None
    endpoints: tuple[str, ...] = ()  # host:port of its peers (application) or orderers


@dataclass(frozen=True, slots=True)
class ChannelDefinition:
    """Everything a genesis block says. `policy_overrides` maps a policy path to its text."""

    channel_id: str
    application_orgs: tuple[OrgDefinition, ...]
    orderer_orgs: tuple[OrgDefinition, ...]
    batch_max_count: int = 500
    batch_absolute_max_bytes: int = 10 * 1024 * 1024
    batch_preferred_max_bytes: int = 2 * 1024 * 1024
    batch_timeout_ms: int = 200
    consenters: tuple[str, ...] = ()
    consenter_set: tuple[Consenter, ...] = ()  # the BFT ordering service's members
    policy_overrides: tuple[tuple[str, str], ...] = ()


# --- building --------------------------------------------------------------------------------


def policy_from_text(text: str) -> policies_pb2.Policy:
    """`ANY Writers`/`ALL x`/`MAJORITY Admins` → ImplicitMeta; anything else → Fabric DSL.

    Raises `PolicySyntaxError` (an `InvalidArgument`) when the DSL does not parse.
    """
    match = _IMPLICIT_TEXT.match(text)
    if match:
        meta = policies_pb2.ImplicitMetaPolicy(sub_policy=match[2], rule=_RULES[match[1]])
        return policies_pb2.Policy(type=_IMPLICIT, value=meta.SerializeToString())
    return policies_pb2.Policy(type=_SIGNATURE, value=parse_policy(text).SerializeToString())


def normalise_policy_path(path: str) -> str:
    """`Application/Admins` or `/Channel/Application/Admins` → `/Channel/Application/Admins`."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "Channel":
        parts = parts[1:]
    return "/" + "/".join(["Channel", *parts])


def _value(message: Any) -> configtx_pb2.ConfigValue:
    return configtx_pb2.ConfigValue(value=message.SerializeToString(), mod_policy=ADMINS)


def _set_policies(group: configtx_pb2.ConfigGroup, policies: Mapping[str, str]) -> None:
    for name, text in policies.items():
        group.policies[name].CopyFrom(
            configtx_pb2.ConfigPolicy(policy=policy_from_text(text), mod_policy=ADMINS)
        )


def _capabilities(name: str) -> configtx_pb2.ConfigValue:
    return _value(
        configuration_pb2.Capabilities(capabilities={name: configuration_pb2.Capability()})
    )


def _anchor_peers(endpoints: Sequence[str]) -> peer_pb2.AnchorPeers:
    anchors = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise InvalidArgument(f"peer endpoint {endpoint!r} is not host:port")
        anchors.append(peer_pb2.AnchorPeer(host=host, port=int(port)))
    return peer_pb2.AnchorPeers(anchor_peers=anchors)


def consenter_mapping(consenters: Sequence[Consenter]) -> configuration_pb2.Orderers:
    """Fabric's `Orderers` value: the consenter set of a channel."""
    return configuration_pb2.Orderers(
        consenter_mapping=[
            configuration_pb2.Consenter(
                id=c.id,
                host=c.host,
                port=c.port,
                msp_id=c.msp_id,
                identity=c.identity,
                client_tls_cert=c.client_tls_cert,
                server_tls_cert=c.server_tls_cert,
            )
            for c in consenters
        ]
    )


def org_group(org: OrgDefinition, *, orderer: bool) -> configtx_pb2.ConfigGroup:
    """One organisation's config group: its MSP, alliance role, endpoints and policies."""
    m = org.msp_id
    group = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    group.values["MSP"].CopyFrom(
        configtx_pb2.ConfigValue(value=org.msp.to_proto_bytes(), mod_policy=ADMINS)
    )
    alliance = {"type": org.alliance_type, "regulator": org.regulator, "parent": org.parent}
    group.values[ALLIANCE_VALUE].CopyFrom(
        configtx_pb2.ConfigValue(
            value=json.dumps(alliance, sort_keys=True, separators=(",", ":")).encode(),
            mod_policy=ADMINS,
        )
    )
    if orderer:
        # `member`, not `orderer`: Fabric's samples do the same, and BlockValidation (ANY Writers)
        # must admit the ordering nodes' own signatures.
        group.values["Endpoints"].CopyFrom(
            _value(configuration_pb2.OrdererAddresses(addresses=org.endpoints))
        )
        policies = {
            "Readers": f"OR('{m}.member')",
            "Writers": f"OR('{m}.member')",
            "Admins": f"OR('{m}.admin')",
        }
    else:
        group.values["AnchorPeers"].CopyFrom(_value(_anchor_peers(org.endpoints)))
        policies = {
            "Readers": f"OR('{m}.admin', '{m}.peer', '{m}.client')",
            "Writers": f"OR('{m}.admin', '{m}.client')",
            "Admins": f"OR('{m}.admin')",
            "Endorsement": f"OR('{m}.peer')",
        }
    _set_policies(group, policies)
    return group


def build_config(defn: ChannelDefinition) -> configtx_pb2.Config:
    """The channel's `common.Config` at sequence 0. Raises `InvalidArgument` for a bad override."""
    app = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    for org in defn.application_orgs:
        app.groups[org.msp_id].CopyFrom(org_group(org, orderer=False))
    _set_policies(
        app,
        {
            "Readers": "ANY Readers",
            "Writers": "ANY Writers",
            "Admins": "MAJORITY Admins",
            "Endorsement": "MAJORITY Endorsement",
            "LifecycleEndorsement": "MAJORITY Endorsement",
        },
    )
    app.values["Capabilities"].CopyFrom(_capabilities("V2_0"))

    orderer = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
    for org in defn.orderer_orgs:
        orderer.groups[org.msp_id].CopyFrom(org_group(org, orderer=True))
    _set_policies(
        orderer,
        {
            "Readers": "ANY Readers",
            "Writers": "ANY Writers",
            "Admins": "MAJORITY Admins",
            "BlockValidation": "ANY Writers",
        },
    )
    orderer.values["ConsensusType"].CopyFrom(_value(orderer_pb2.ConsensusType(type="BFT")))
    batch = orderer_pb2.BatchSize(
        max_message_count=defn.batch_max_count,
        absolute_max_bytes=defn.batch_absolute_max_bytes,
        preferred_max_bytes=defn.batch_preferred_max_bytes,
    )
    orderer.values["BatchSize"].CopyFrom(_value(batch))
    timeout = orderer_pb2.BatchTimeout(timeout=f"{defn.batch_timeout_ms}ms")
    orderer.values["BatchTimeout"].CopyFrom(_value(timeout))
    orderer.values["Capabilities"].CopyFrom(_capabilities("V2_0"))
    if defn.consenter_set:
        orderer.values["Orderers"].CopyFrom(_value(consenter_mapping(defn.consenter_set)))

    channel = configtx_pb2.ConfigGroup(mod_policy=ADMINS)
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
    # Fabric 3 requires the V3_0 channel capability for BFT ordering.
    channel.values["Capabilities"].CopyFrom(_capabilities("V3_0"))
    _set_policies(
        channel, {"Readers": "ANY Readers", "Writers": "ANY Writers", "Admins": "MAJORITY Admins"}
    )
    for path, text in defn.policy_overrides:
        *groups, name = normalise_policy_path(path).split("/")[2:]
        target = channel
        for group in groups:
            if group not in target.groups:
                raise InvalidArgument(f"policy override {path}: the channel has no group {group}")
            target = target.groups[group]
        _set_policies(target, {name: text})
    return configtx_pb2.Config(sequence=0, channel_group=channel)


def genesis_block(defn: ChannelDefinition, *, timestamp_ms: int) -> common_pb2.Block:
    """Block 0: one unsigned CONFIG envelope holding the configuration, as configtxgen makes it."""
    header = common_pb2.ChannelHeader(
        type=_CONFIG_TYPE,
        version=1,
        channel_id=defn.channel_id,
        tx_id="",
        epoch=0,
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
    value = common_pb2.OrdererBlockMetadata(last_config=common_pb2.LastConfig(index=0))
    block.metadata.metadata[common_pb2.BlockMetadataIndex.Value("SIGNATURES")] = (
        common_pb2.Metadata(value=value.SerializeToString()).SerializeToString()
    )
    return block


# --- parsing ---------------------------------------------------------------------------------


# Signer sets whose policy verdicts a configuration remembers: a channel's writers are a few
# dozen certificates; a member minting certificates only evicts entries.
VERDICTS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class _Policy:
    envelope: Any = None  # a SignaturePolicyEnvelope, or None for ImplicitMeta
    compiles: bool = False  # the envelope compiles (Fabric's rules), decided once per config
    sub_policy: str = ""
    rule: ImplicitRule = "ANY"


@dataclass(frozen=True, eq=False)
class ChannelConfig:
    """A parsed channel configuration: members, MSPs, batch settings and policy evaluation."""

    channel_id: str
    sequence: int
    application_orgs: tuple[OrgDefinition, ...]  # sorted by MSP id
    orderer_orgs: tuple[OrgDefinition, ...]
    batch_max_count: int
    batch_absolute_max_bytes: int
    batch_preferred_max_bytes: int
    batch_timeout_ms: int
    consenters: tuple[str, ...]
    msps: MspManager = field(repr=False)
    consenter_set: tuple[Consenter, ...]
    _policies: Mapping[str, _Policy] = field(repr=False)
    _subgroups: Mapping[str, tuple[str, ...]] = field(repr=False)
    # (path, signers) → verdict of `satisfied_by`: a pure function of this configuration and the
    # signers' certificates, never of time (their validity is their caller's to check each time).
    _verdicts: dict[tuple[str, tuple[tuple[str, bytes], ...]], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def application_msp_ids(self) -> tuple[str, ...]:
        return tuple(o.msp_id for o in self.application_orgs)

    @property
    def orderer_msp_ids(self) -> tuple[str, ...]:
        return tuple(o.msp_id for o in self.orderer_orgs)

    @property
    def orgs(self) -> Mapping[str, OrgDefinition]:
        """Every organisation by MSP id; an org in both groups appears with its peer endpoints."""
        return {o.msp_id: o for o in (*self.orderer_orgs, *self.application_orgs)}

    @property
    def policy_paths(self) -> tuple[str, ...]:
        return tuple(sorted(self._policies))

    @classmethod
    def from_block(cls, block: common_pb2.Block) -> ChannelConfig:
        """Parse a config block; raises `MalformedMessage` saying what is wrong."""
        if len(block.data.data) != 1:
            raise MalformedMessage(
                "config block", f"it holds {len(block.data.data)} transactions, not exactly one"
            )
        payload = _parse(
            common_pb2.Payload(), _parse(common_pb2.Envelope(), block.data.data[0]).payload
        )
        header = _parse(common_pb2.ChannelHeader(), payload.header.channel_header)
        if header.type != _CONFIG_TYPE:
            raise MalformedMessage(
                "config block", f"its transaction has header type {header.type}, not CONFIG (1)"
            )
        envelope = _parse(configtx_pb2.ConfigEnvelope(), payload.data)
        if not envelope.HasField("config"):
            raise MalformedMessage("config block", "its ConfigEnvelope holds no config")
        return cls.from_config(envelope.config, str(header.channel_id))

    @classmethod
    def from_config(cls, config: configtx_pb2.Config, channel_id: str) -> ChannelConfig:
        """Parse a `common.Config` (its channel id lives in the enclosing header)."""
        root = config.channel_group
        app, orderer = _group(root, "Application"), _group(root, "Orderer")
        app_orgs = tuple(_org(m, app.groups[m], orderer=False) for m in sorted(app.groups))
        ord_orgs = tuple(_org(m, orderer.groups[m], orderer=True) for m in sorted(orderer.groups))
        batch = _parse(orderer_pb2.BatchSize(), _value_bytes(orderer, "BatchSize", "Orderer"))
        timeout = _parse(
            orderer_pb2.BatchTimeout(), _value_bytes(orderer, "BatchTimeout", "Orderer")
        )
        if "OrdererAddresses" in root.values:
            addresses = _parse(
                configuration_pb2.OrdererAddresses(), root.values["OrdererAddresses"].value
            )
            consenters = tuple(str(a) for a in addresses.addresses)
        else:  # Fabric 2 moved addresses into the orderer organisations
            consenters = tuple(e for o in ord_orgs for e in o.endpoints)
        policies: dict[str, _Policy] = {}
        subgroups: dict[str, tuple[str, ...]] = {}
        _index("/Channel", root, policies, subgroups)
        msps = {o.msp_id: o.msp for o in (*ord_orgs, *app_orgs)}
        consenter_set: tuple[Consenter, ...] = ()
        if "Orderers" in orderer.values:
            mapping = _parse(configuration_pb2.Orderers(), orderer.values["Orderers"].value)
            consenter_set = tuple(_consenter(c) for c in mapping.consenter_mapping)
        return cls(
            channel_id=channel_id,
            sequence=int(config.sequence),
            application_orgs=app_orgs,
            orderer_orgs=ord_orgs,
            batch_max_count=int(batch.max_message_count),
            batch_absolute_max_bytes=int(batch.absolute_max_bytes),
            batch_preferred_max_bytes=int(batch.preferred_max_bytes),
            batch_timeout_ms=parse_duration_ms(str(timeout.timeout)),
            consenters=consenters,
            msps=MspManager(msps.values()),
            consenter_set=consenter_set,
            _policies=policies,
            _subgroups=subgroups,
        )

    def definition(self) -> ChannelDefinition:
        """The definition this configuration was built from (overrides are not recovered)."""
        return ChannelDefinition(
            channel_id=self.channel_id,
            application_orgs=self.application_orgs,
            orderer_orgs=self.orderer_orgs,
            batch_max_count=self.batch_max_count,
            batch_absolute_max_bytes=self.batch_absolute_max_bytes,
            batch_preferred_max_bytes=self.batch_preferred_max_bytes,
            batch_timeout_ms=self.batch_timeout_ms,
            consenters=self.consenters,
            consenter_set=self.consenter_set,
        )

    def certificate_problem(
        self,
        block: common_pb2.Block,
        views: Sequence[EnvelopeView | MalformedTransaction] | None = None,
    ) -> str | None:
        """Why `block` lacks a valid commit certificate of this configuration's consenter set
        (judged at the block's time), or None when it has one. `views`: as for `block_time`."""
        try:
            at = block_time(block, views)
        except MedallianceError as exc:
            return str(exc)
        return certificate_problem(block, self.channel_id, self.consenter_set, self.msps, at=at)

    def evaluate_policy(self, path: str, signed: Sequence[SignedData], *, at: dt.datetime) -> bool:
        """Whether `signed` satisfies the policy at `path`, e.g. `/Channel/Application/Writers`.

        ImplicitMeta policies count every sub-group; a sub-group without the sub-policy counts as
        not satisfied, as in Fabric's `implicitmeta.go`. Raises `UnknownPolicy` for a bad path.
        """
        if path not in self._policies:
            raise UnknownPolicy(self.channel_id, path)
        # The signatures are checked once for all sub-policies (an ImplicitMeta policy over n
        # organisations would otherwise verify each of them n times), and at `at` on every
        # call; what the valid signers satisfy is remembered (`satisfied_by`).
        return self.satisfied_by(path, valid_signers(signed, self.msps, at=at))

    def satisfied_by(self, path: str, signers: Sequence[Identity]) -> bool:
        """`evaluate_policy` for signers its caller has already validated: identities valid at
        the time that matters, whose signatures verified (distinct; `valid_signers`' output).
        The verdict is remembered per configuration for up to `VERDICTS_KEPT` signer sets,
        keyed by the exact certificates in order (an identity's roles are its certificate's,
        read by this configuration's MSPs; the greedy rule reads them in order). Raises
        `UnknownPolicy` for a bad path."""
        if path not in self._policies:
            raise UnknownPolicy(self.channel_id, path)
        key = (path, tuple((s.msp_id, s.id_hash) for s in signers))
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._evaluate(path, signers)
            if len(self._verdicts) >= VERDICTS_KEPT:  # start afresh: one atomic step, as peers
                self._verdicts.clear()  # evaluate in worker threads too
            self._verdicts[key] = verdict
        return verdict

    def _evaluate(self, path: str, signers: Sequence[Identity]) -> bool:
        policy = self._policies[path]
        if policy.envelope is not None:
            envelope = policy.envelope
            return policy.compiles and identities_satisfy(envelope, signers, self.msps)
        group = path.rsplit("/", 1)[0]
        sub_paths = [f"{group}/{name}/{policy.sub_policy}" for name in self._subgroups[group]]
        # Lazily, so that evaluation stops once the rule is decided (ANY: the first organisation
        # that passes); each sub-policy evaluated costs a principal match per signer.
        results = (p in self._policies and self._evaluate(p, signers) for p in sub_paths)
        return decide_implicit_meta(policy.rule, len(sub_paths), results)


def _group(parent: configtx_pb2.ConfigGroup, name: str) -> configtx_pb2.ConfigGroup:
    # Indexing a protobuf map of messages inserts a missing key, so test membership first.
    if name not in parent.groups:
        raise MalformedMessage("channel configuration", f"it has no {name} group")
    return parent.groups[name]


def _value_bytes(group: configtx_pb2.ConfigGroup, name: str, where: str) -> bytes:
    if name not in group.values:
        raise MalformedMessage("channel configuration", f"the {where} group has no {name} value")
    return bytes(group.values[name].value)


def _index(
    path: str,
    group: configtx_pb2.ConfigGroup,
    policies: dict[str, _Policy],
    subgroups: dict[str, tuple[str, ...]],
) -> None:
    subgroups[path] = tuple(sorted(group.groups))
    for name in sorted(group.policies):
        policy = group.policies[name].policy
        if policy.type == _SIGNATURE:
            envelope = _parse(policies_pb2.SignaturePolicyEnvelope(), policy.value)
            policies[f"{path}/{name}"] = _Policy(envelope=envelope, compiles=compiles(envelope))
        elif policy.type == _IMPLICIT:
            meta = _parse(policies_pb2.ImplicitMetaPolicy(), policy.value)
            rule = policies_pb2.ImplicitMetaPolicy.Rule.Name(meta.rule)
            policies[f"{path}/{name}"] = _Policy(sub_policy=str(meta.sub_policy), rule=rule)
        else:
            raise MalformedMessage(
                "channel configuration", f"policy {path}/{name} has unsupported type {policy.type}"
            )
    for name in sorted(group.groups):
        _index(f"{path}/{name}", group.groups[name], policies, subgroups)


def _org(msp_id: str, group: configtx_pb2.ConfigGroup, *, orderer: bool) -> OrgDefinition:
    where = f"organisation {msp_id}"
    try:
        msp = Msp.from_proto_bytes(_value_bytes(group, "MSP", where))
    except MalformedMessage:
        raise
    except MedallianceError as exc:
        raise MalformedMessage("channel configuration", f"MSP of {msp_id}: {exc}") from exc
    alliance: dict[str, Any] = {}
    if ALLIANCE_VALUE in group.values:
        try:
            alliance = json.loads(group.values[ALLIANCE_VALUE].value)
        except ValueError as exc:
            raise MalformedMessage(
                "channel configuration", f"{ALLIANCE_VALUE} of {msp_id} is not JSON"
            ) from exc
        if not isinstance(alliance, dict):
            raise MalformedMessage(
                "channel configuration", f"{ALLIANCE_VALUE} of {msp_id} is not a JSON object"
            )
    endpoints: tuple[str, ...] = ()
    if orderer and "Endpoints" in group.values:
        addresses = _parse(configuration_pb2.OrdererAddresses(), group.values["Endpoints"].value)
        endpoints = tuple(str(a) for a in addresses.addresses)
    elif not orderer and "AnchorPeers" in group.values:
        anchors = _parse(peer_pb2.AnchorPeers(), group.values["AnchorPeers"].value)
        endpoints = tuple(f"{a.host}:{a.port}" for a in anchors.anchor_peers)
    return OrgDefinition(
        msp_id=msp_id,
        msp=msp,
        alliance_type=str(alliance.get("type") or ""),
        regulator=_optional_str(alliance.get("regulator")),
        parent=_optional_str(alliance.get("parent")),
        endpoints=endpoints,
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _parse(message: Any, data: bytes) -> Any:
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise MalformedMessage(type(message).__name__, str(exc)) from exc
    return message


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def parse_duration_ms(text: str) -> int:
    """A Go duration string (`200ms`, `2s`, `1m30s`, `1.5s`) in whole milliseconds."""
    parts = list(_DURATION_PART.finditer(text))
    if not text or "".join(m[0] for m in parts) != text:
        raise MalformedMessage(
            "channel configuration", f"batch timeout {text!r} is not a duration like 200ms or 2s"
        )
    return round(sum(float(m[1]) * _UNIT_MS[m[2]] for m in parts))


def _consenter(c: configuration_pb2.Consenter) -> Consenter:
    """A consenter of the config; its name is its certificate's common name."""
    try:
        identity = identities_pb2.SerializedIdentity.FromString(c.identity)
        cert = x509.load_pem_x509_certificate(identity.id_bytes)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value)
    except (DecodeError, ValueError, IndexError):
        raise MalformedMessage("config", f"consenter {c.id} has no readable identity") from None
    return Consenter(
        int(c.id),
        name,
        str(c.host),
        int(c.port),
        str(c.msp_id),
        bytes(c.identity),
        bytes(c.client_tls_cert),
        bytes(c.server_tls_cert),
    )
