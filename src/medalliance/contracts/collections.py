"""Private data collections: Fabric's `collections_config.json`, checked, as a config package.

A collections config is a JSON array of Fabric's static collection configs:

    [{"name": "assetCollection", "policy": "OR('Org1MSP.member','Org2MSP.member')",
      "requiredPeerCount": 1, "maxPeerCount": 1, "blockToLive": 0,
      "memberOnlyRead": true, "memberOnlyWrite": true,
      "endorsementPolicy": {"signaturePolicy": "OR('Org1MSP.member')"}}]

It becomes part of the chaincode definition as a serialized `peer.CollectionConfigPackage`, so
organisations approve (and the lifecycle's digest covers) the same collections. The checks are
Fabric's: unique names of allowed characters, 0 <= requiredPeerCount <= maxPeerCount, blockToLive
>= 0, a member policy of member principals of channel organisations, at most one of
`signaturePolicy`/`channelConfigPolicy`; an update may not drop a collection nor change its
blockToLive. A member of a collection is a peer or client of an organisation its member policy
names (Fabric's `MemberOrgs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from fabric_protos.peer import collection_pb2, policy_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import InvalidArgument, PolicySyntaxError
from medalliance.identity.policy import format_policy, parse_policy

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # Fabric's allowed collection name characters
_FIELDS = frozenset(
    {
        "name",
        "policy",
        "requiredPeerCount",
        "maxPeerCount",
        "blockToLive",
        "memberOnlyRead",
        "memberOnlyWrite",
        "endorsementPolicy",
    }
)


class CollectionConfigError(InvalidArgument):
    """A collections config that Fabric would refuse."""


@dataclass(frozen=True, slots=True)
class Collection:
    """One committed collection as the peer uses it."""

    name: str
    members: frozenset[str]  # MSP ids named by the member policy
    member_policy: str
    required_peer_count: int
    max_peer_count: int
    block_to_live: int  # 0: never purged
    member_only_read: bool
    member_only_write: bool
    # its own endorsement policy (a serialized peer.ApplicationPolicy); None: the chaincode's
    endorsement_policy: bytes | None

    def is_member(self, msp_id: str) -> bool:
        return msp_id in self.members


def load_collections_config(data: bytes | str, channel_orgs: Iterable[str] = ()) -> bytes:
    """Parse and check a `collections_config.json`; the serialized CollectionConfigPackage.

    `channel_orgs`, when given, are the channel's organisations that member policies may name.
    """
    try:
        items = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CollectionConfigError(f"collections config is not JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise CollectionConfigError("collections config must be a non-empty JSON array")
    package = collection_pb2.CollectionConfigPackage()
    for i, item in enumerate(items):
        package.config.add(static_collection_config=_static(i, item))
    data_out = bytes(package.SerializeToString())
    check_collections(data_out, channel_orgs)
    return data_out


def _static(i: int, item: object) -> collection_pb2.StaticCollectionConfig:
    if not isinstance(item, dict):
        raise CollectionConfigError(f"collection {i + 1} must be a JSON object")
    name = item.get("name")
    label = f"collection {name!r}" if isinstance(name, str) else f"collection {i + 1}"
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise CollectionConfigError(f"{label}: unknown field(s) {', '.join(unknown)}")
    if not isinstance(name, str):
        raise CollectionConfigError(f"{label}: name must be a string")
    policy = item.get("policy")
    if not isinstance(policy, str):
        raise CollectionConfigError(f"{label}: policy must be a signature policy string")
    config = collection_pb2.StaticCollectionConfig(
        name=name,
        required_peer_count=_int(item, "requiredPeerCount", label),
        maximum_peer_count=_int(item, "maxPeerCount", label),
        block_to_live=_int(item, "blockToLive", label),
        member_only_read=_bool(item, "memberOnlyRead", label),
        member_only_write=_bool(item, "memberOnlyWrite", label),
    )
    config.member_orgs_policy.signature_policy.CopyFrom(_parse(policy, label))
    endorsement = item.get("endorsementPolicy")
    if endorsement is not None:
        config.endorsement_policy.CopyFrom(_endorsement(endorsement, label))
    return config


def _endorsement(value: object, label: str) -> policy_pb2.ApplicationPolicy:
    if not isinstance(value, dict) or set(value) - {"signaturePolicy", "channelConfigPolicy"}:
        raise CollectionConfigError(
            f"{label}: endorsementPolicy takes signaturePolicy or channelConfigPolicy"
        )
    if len(value) != 1:
        raise CollectionConfigError(
            f"{label}: endorsementPolicy needs exactly one of signaturePolicy and "
            "channelConfigPolicy"
        )
    policy = policy_pb2.ApplicationPolicy()
    if "signaturePolicy" in value:
        text = value["signaturePolicy"]
        if not isinstance(text, str):
            raise CollectionConfigError(f"{label}: signaturePolicy must be a string")
        policy.signature_policy.CopyFrom(_parse(text, label))
    else:
        reference = value["channelConfigPolicy"]
        if not isinstance(reference, str) or not reference:
            raise CollectionConfigError(f"{label}: channelConfigPolicy must be a policy name")
        policy.channel_config_policy_reference = reference
    return policy


def _parse(text: str, label: str) -> policies_pb2.SignaturePolicyEnvelope:
    try:
        return parse_policy(text)
    except PolicySyntaxError as exc:
        raise CollectionConfigError(f"{label}: {exc}") from None


def _int(item: Mapping[str, object], field: str, label: str) -> int:
    value = item.get(field, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CollectionConfigError(f"{label}: {field} must be an integer")
    if value < 0:
        raise CollectionConfigError(f"{label}: {field} ({value}) cannot be less than zero")
    return value


def _bool(item: Mapping[str, object], field: str, label: str) -> bool:
    value = item.get(field, False)
    if not isinstance(value, bool):
        raise CollectionConfigError(f"{label}: {field} must be true or false")
    return value


def check_collections(
    data: bytes, channel_orgs: Iterable[str] = (), previous: bytes = b""
) -> dict[str, Collection]:
    """Fabric's checks of a CollectionConfigPackage (and of its update of `previous`)."""
    collections = parse_collections(data)
    orgs = frozenset(channel_orgs)
    for c in collections.values():
        if not _NAME.match(c.name):
            raise CollectionConfigError(
                f"collection name {c.name!r} may only contain letters, digits, '_' and '-'"
            )
        if c.max_peer_count < c.required_peer_count:
            raise CollectionConfigError(
                f"collection {c.name!r}: maxPeerCount ({c.max_peer_count}) cannot be less than "
                f"requiredPeerCount ({c.required_peer_count})"
            )
        outside = sorted(c.members - orgs) if orgs else []
        if outside:
            raise CollectionConfigError(
                f"collection {c.name!r}: member {', '.join(outside)} is not an organisation of "
                "the channel"
            )
    if previous:
        for name, old in parse_collections(previous).items():
            new = collections.get(name)
            if new is None:
                raise CollectionConfigError(
                    f"existing collection {name!r} missing in the new collections config"
                )
            if new.block_to_live != old.block_to_live:
                raise CollectionConfigError(
                    f"collection {name!r}: blockToLive cannot change ({old.block_to_live} -> "
                    f"{new.block_to_live})"
                )
    return collections


def parse_collections(data: bytes) -> dict[str, Collection]:
    """The collections of a serialized CollectionConfigPackage by name (empty for b"")."""
    package = collection_pb2.CollectionConfigPackage()
    try:
        package.ParseFromString(data)
    except DecodeError:
        raise CollectionConfigError("collections are not a CollectionConfigPackage") from None
    found: dict[str, Collection] = {}
    for entry in package.config:
        if not entry.HasField("static_collection_config"):
            raise CollectionConfigError("only static collection configs are supported")
        s = entry.static_collection_config
        if s.name in found:
            raise CollectionConfigError(f"collection {s.name!r} is defined twice")
        found[s.name] = _collection(s)
    return found


def _collection(s: collection_pb2.StaticCollectionConfig) -> Collection:
    label = f"collection {s.name!r}"
    if not s.member_orgs_policy.HasField("signature_policy"):
        raise CollectionConfigError(f"{label}: the member policy must be a signature policy")
    envelope = s.member_orgs_policy.signature_policy
    members = set()
    for principal in envelope.identities:
        if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            raise CollectionConfigError(f"{label}: the member policy must name MSP roles")
        role = msp_principal_pb2.MSPRole.FromString(principal.principal)
        members.add(role.msp_identifier)
    if not members:
        raise CollectionConfigError(f"{label}: the member policy names no organisation")
    endorsement = None
    if s.HasField("endorsement_policy"):
        which = s.endorsement_policy.WhichOneof("Type")
        if which is None:
            raise CollectionConfigError(f"{label}: the endorsement policy is empty")
        endorsement = bytes(s.endorsement_policy.SerializeToString())
    return Collection(
        name=s.name,
        members=frozenset(members),
        member_policy=format_policy(envelope),
        required_peer_count=s.required_peer_count,
        max_peer_count=s.maximum_peer_count,
        block_to_live=s.block_to_live,
        member_only_read=s.member_only_read,
        member_only_write=s.member_only_write,
        endorsement_policy=endorsement,
    )
