"""The `_lifecycle` system contract: contracts are approved per organisation, committed by majority.

Recorded on the ledger in namespace `_lifecycle` (paper fig. 4: deploy, invoke, deregister):
- `ApproveChaincodeDefinitionForMyOrg(bytes(ApproveChaincodeDefinitionForMyOrgArgs))` by an admin:
  records the caller's organisation's approval of a definition at sequence = committed + 1, under a
  key of its own (`approval/<name>/<sequence>/<msp>`), so organisations never conflict.
- `CheckCommitReadiness(bytes(CheckCommitReadinessArgs))`: JSON `{"approvals": {msp: bool}}`.
- `CommitChaincodeDefinition(bytes(CommitChaincodeDefinitionArgs))` by an admin: needs approvals of
  the same definition from a majority of the channel's organisations; writes `definition/<name>`.
- `ApproveDeregistrationForMyOrg(name, sequence)` and `CommitDeregistration(name, sequence)`: the
  paper's 注销, by the same majority rule; afterwards every invocation fails.
- `QueryChaincodeDefinition(name)`, `QueryChaincodeDefinitions()`: JSON.

Unlike Fabric, the package id of a Python contract is part of the agreed definition: every
member runs the same Python package, so approvals that name different code do not add up.

An external chaincode (chaincode as a service, docs/chaincode-as-a-service.md) is approved with
`endorsement_plugin` "ccaas": as in Fabric, each organisation's package differs (it names that
organisation's own chaincode server), so the package id stays local to the approval — recorded
beside it, outside the digest — and the agreed definition (`external`, no package id) holds the
name, version, sequence and policy. A peer runs the package its own organisation approved
(`approved_package`). What protects results then is the endorsement policy alone: the
organisations it requires must produce equal read-write sets.

Definitions are stored as canonical JSON (sorted keys) with the endorsement policy as base64 of
`peer.ApplicationPolicy`; `external` appears only when true, so Python definitions are unchanged.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2
from google.protobuf.message import DecodeError

from medalliance.contracts.api import Context, Contract, transaction
from medalliance.contracts.collections import (
    Collection,
    CollectionConfigError,
    check_collections,
    parse_collections,
)
from medalliance.errors import ContractError
from medalliance.identity.policy import parse_policy
from medalliance.ledger.state import StateReader

LIFECYCLE_NAMESPACE = "_lifecycle"
# The approval's endorsement plugin that marks an external chaincode (package id per organisation).
EXTERNAL_PLUGIN = "ccaas"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True, slots=True)
class ChaincodeDefinition:
    name: str
    sequence: int
    version: str
    package_id: str
    endorsement_policy: bytes  # serialized peer.ApplicationPolicy
    deregistered: bool = False
    # chaincode as a service: no agreed package; each organisation runs the one it approved
    external: bool = False
    # private data collections: a serialized peer.CollectionConfigPackage (b"": none)
    collections: bytes = b""

    def to_json(self) -> bytes:
        fields = asdict(self)
        fields["endorsement_policy"] = base64.b64encode(self.endorsement_policy).decode()
        if not self.external:
            del fields["external"]  # the JSON (and digest) of a Python definition is unchanged
        if self.collections:
            fields["collections"] = base64.b64encode(self.collections).decode()
        else:
            del fields["collections"]  # likewise for a definition without collections
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ChaincodeDefinition:
        fields = json.loads(data)
        fields["endorsement_policy"] = base64.b64decode(fields["endorsement_policy"])
        if "collections" in fields:
            fields["collections"] = base64.b64decode(fields["collections"])
        return cls(**fields)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()


def committed_definition(reader: StateReader, name: str) -> ChaincodeDefinition | None:
    """The committed definition of contract `name` in `reader`'s state, if any."""
    versioned = reader.get(LIFECYCLE_NAMESPACE, _definition_key(name))
    return None if versioned is None else _definition(bytes(versioned.value))


@functools.lru_cache(maxsize=256)
def _definition(data: bytes) -> ChaincodeDefinition:
    """Parsed once per distinct committed value (the gateway, the endorser and validation each
    ask per transaction): keyed by the bytes themselves, so an upgrade, which commits new
    bytes, is never answered from an older definition."""
    return ChaincodeDefinition.from_json(data)


def committed_collections(reader: StateReader, name: str) -> Mapping[str, Collection]:
    """The private data collections of contract `name`'s committed definition, by name."""
    definition = committed_definition(reader, name)
    if definition is None or not definition.collections:
        return {}
    return _collections(definition.collections)


@functools.lru_cache(maxsize=64)
def _collections(data: bytes) -> Mapping[str, Collection]:
    return types.MappingProxyType(
        parse_collections(data)
    )  # parsed once per definition: endorsement and validation ask


def approved_package(
    reader: StateReader, definition: ChaincodeDefinition, msp_id: str
) -> str | None:
    """The package `msp_id` approved for external contract `definition`, if it approved it."""
    raw = reader.get(
        LIFECYCLE_NAMESPACE, _approval_key(definition.name, definition.sequence, msp_id)
    )
    if raw is None:
        return None
    record = json.loads(raw.value)
    return str(record["package_id"]) if record["digest"] == definition.digest else None


def committed_definitions(reader: StateReader) -> list[ChaincodeDefinition]:
    """Every committed definition in `reader`'s state (deregistered ones included), by name."""
    return [
        ChaincodeDefinition.from_json(v.value)
        for _, v in reader.range(LIFECYCLE_NAMESPACE, "definition/", "definition0")
    ]


def application_policy(policy: str) -> bytes:
    """A definition's endorsement policy, from Fabric's policy language to the serialised
    `peer.ApplicationPolicy` that approvals and commits carry."""
    return bytes(
        policy_pb2.ApplicationPolicy(signature_policy=parse_policy(policy)).SerializeToString()
    )


def approve_args(
    *,
    name: str,
    version: str,
    sequence: int,
    policy: bytes,
    package_id: str,
    external: bool,
    collections: bytes = b"",
) -> bytes:
    """`ApproveChaincodeDefinitionForMyOrg`'s argument; `policy` a serialised
    `peer.ApplicationPolicy`; `external`: a ccaas package, whose id stays this organisation's;
    `collections` a serialised `peer.CollectionConfigPackage` (`contracts.collections`)."""
    msg = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(
        name=name,
        version=version,
        sequence=sequence,
        validation_parameter=policy,
        endorsement_plugin=EXTERNAL_PLUGIN if external else "",
        source=lifecycle_pb2.ChaincodeSource(
            local_package=lifecycle_pb2.ChaincodeSource.Local(package_id=package_id)
        ),
    )
    if collections:
        msg.collections.ParseFromString(collections)
    return bytes(msg.SerializeToString())


def commit_args(
    *,
    name: str,
    version: str,
    sequence: int,
    policy: bytes,
    external: bool,
    collections: bytes = b"",
) -> bytes:
    """`CommitChaincodeDefinition`'s argument, matching `approve_args`."""
    msg = lifecycle_pb2.CommitChaincodeDefinitionArgs(
        name=name,
        version=version,
        sequence=sequence,
        validation_parameter=policy,
        endorsement_plugin=EXTERNAL_PLUGIN if external else "",
    )
    if collections:
        msg.collections.ParseFromString(collections)
    return bytes(msg.SerializeToString())


def _definition_key(name: str) -> str:
    return f"definition/{name}"


def _approval_key(name: str, sequence: int, msp_id: str) -> str:
    return f"approval/{name}/{sequence}/{msp_id}"


class LifecycleContract(Contract):
    name = LIFECYCLE_NAMESPACE

    @transaction
    def ApproveChaincodeDefinitionForMyOrg(self, ctx: Context, args: bytes) -> None:
        msg = _parse(lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(), args)
        package_id = str(msg.source.local_package.package_id)
        if not package_id:
            raise ContractError("the approval must name an installed package id", 400)
        external = msg.endorsement_plugin == EXTERNAL_PLUGIN
        definition = self._new_definition(
            ctx,
            msg.name,
            msg.sequence,
            msg.version,
            bytes(msg.validation_parameter),
            "" if external else package_id,
            external=external,
            collections=_collections_of(msg),
        )
        self._approve(ctx, definition, package_id)

    @transaction
    def ApproveDeregistrationForMyOrg(self, ctx: Context, name: str, sequence: str) -> None:
        self._approve(ctx, self._deregistration(ctx, name, sequence))

    @transaction(evaluate=True)
    def CheckCommitReadiness(self, ctx: Context, args: bytes) -> dict[str, object]:
        msg = _parse(lifecycle_pb2.CheckCommitReadinessArgs(), args)
        return {"approvals": self._approvals(ctx, self._best_definition(ctx, msg))}

    @transaction
    def CommitChaincodeDefinition(self, ctx: Context, args: bytes) -> None:
        msg = _parse(lifecycle_pb2.CommitChaincodeDefinitionArgs(), args)
        self._commit(ctx, self._best_definition(ctx, msg))

    @transaction
    def CommitDeregistration(self, ctx: Context, name: str, sequence: str) -> None:
        self._commit(ctx, self._deregistration(ctx, name, sequence))

    @transaction(evaluate=True)
    def QueryChaincodeDefinition(self, ctx: Context, name: str) -> dict[str, object]:
        raw = ctx.stub.get_state(_definition_key(name))
        if raw is None:
            raise ContractError(f"contract {name} has no committed definition", 404)
        return _public(ChaincodeDefinition.from_json(raw))

    @transaction(evaluate=True)
    def QueryChaincodeDefinitions(self, ctx: Context) -> list[dict[str, object]]:
        return [
            _public(ChaincodeDefinition.from_json(v))
            for _, v in ctx.stub.get_state_by_range("definition/", "definition0")
        ]

    # --- rules -----------------------------------------------------------------------------------

    def _new_definition(
        self,
        ctx: Context,
        name: str,
        sequence: int,
        version: str,
        policy: bytes,
        package_id: str,
        *,
        external: bool = False,
        collections: bytes = b"",
    ) -> ChaincodeDefinition:
        if not name or not set(name) <= _NAME_CHARS or name.startswith("_"):
            raise ContractError(
                f"contract name {name!r} may use letters, digits, _ and - (not first _)", 400
            )
        if not version:
            raise ContractError("a definition needs a version", 400)
        parsed = policy_pb2.ApplicationPolicy()
        try:
            parsed.ParseFromString(policy)
        except DecodeError as exc:
            raise ContractError("the endorsement policy is not an ApplicationPolicy", 400) from exc
        if parsed.WhichOneof("Type") is None:
            raise ContractError("a definition needs an endorsement policy", 400)
        self._check_sequence(ctx, name, sequence)
        if collections:
            current = ctx.stub.get_state(_definition_key(name))
            previous = ChaincodeDefinition.from_json(current).collections if current else b""
            try:
                check_collections(collections, ctx.channel_orgs, previous)
            except CollectionConfigError as exc:
                raise ContractError(str(exc), 400) from None
        return ChaincodeDefinition(
            name, sequence, version, package_id, policy, external=external, collections=collections
        )

    def _deregistration(self, ctx: Context, name: str, sequence: str) -> ChaincodeDefinition:
        raw = ctx.stub.get_state(_definition_key(name))
        if raw is None:
            raise ContractError(f"contract {name} is not committed; nothing to deregister", 404)
        current = ChaincodeDefinition.from_json(raw)
        if current.deregistered:
            raise ContractError(f"contract {name} is already deregistered", 409)
        try:
            number = int(sequence)
        except ValueError:
            raise ContractError(f"sequence {sequence!r} is not a number", 400) from None
        self._check_sequence(ctx, name, number)
        return ChaincodeDefinition(
            name,
            number,
            current.version,
            current.package_id,
            current.endorsement_policy,
            deregistered=True,
            external=current.external,
            collections=current.collections,
        )

    def _check_sequence(self, ctx: Context, name: str, sequence: int) -> None:
        raw = ctx.stub.get_state(_definition_key(name))
        current = ChaincodeDefinition.from_json(raw).sequence if raw else 0
        if sequence != current + 1:
            raise ContractError(
                f"contract {name} is at sequence {current}; the next definition must use {current + 1}",
                409,
            )

    def _approve(
        self, ctx: Context, definition: ChaincodeDefinition, package_id: str | None = None
    ) -> None:
        if not ctx.client.is_admin:
            raise ContractError(f"only an admin of {ctx.client.msp_id} may approve for it", 403)
        local = package_id if definition.external and package_id else definition.package_id
        record = json.dumps(
            {"digest": definition.digest, "package_id": local}, sort_keys=True
        ).encode()
        ctx.stub.put_state(
            _approval_key(definition.name, definition.sequence, ctx.client.msp_id), record
        )

    def _approvals(self, ctx: Context, definition: ChaincodeDefinition) -> dict[str, bool]:
        approvals = {}
        for msp_id in ctx.channel_orgs:
            raw = ctx.stub.get_state(_approval_key(definition.name, definition.sequence, msp_id))
            approvals[msp_id] = raw is not None and json.loads(raw)["digest"] == definition.digest
        return approvals

    def _best_definition(self, ctx: Context, msg: Any) -> ChaincodeDefinition:
        """The definition `msg` describes, with the approved package most organisations agree on.

        Commit arguments carry no package id (Fabric's keep it per organisation): each package
        some member approved at this sequence is a candidate; ties go to the first in channel
        order, so every endorser picks the same one. With no approval at all, readiness is all
        false and a commit names who approved (nobody).
        """
        if msg.endorsement_plugin == EXTERNAL_PLUGIN:  # no package is agreed: one candidate
            return self._new_definition(
                ctx,
                msg.name,
                msg.sequence,
                msg.version,
                bytes(msg.validation_parameter),
                "",
                external=True,
                collections=_collections_of(msg),
            )
        candidates: list[ChaincodeDefinition] = []
        for package_id in self._approved_packages(ctx, msg.name, msg.sequence):
            candidates.append(
                self._new_definition(
                    ctx,
                    msg.name,
                    msg.sequence,
                    msg.version,
                    bytes(msg.validation_parameter),
                    package_id,
                    collections=_collections_of(msg),
                )
            )
        return max(candidates, key=lambda d: sum(self._approvals(ctx, d).values()))

    def _approved_packages(self, ctx: Context, name: str, sequence: int) -> list[str]:
        found: list[str] = []
        for msp_id in ctx.channel_orgs:
            raw = ctx.stub.get_state(_approval_key(name, sequence, msp_id))
            package_id = str(json.loads(raw)["package_id"]) if raw is not None else ""
            if package_id and package_id not in found:
                found.append(package_id)
        return found or [""]  # nobody approved yet: a candidate no approval matches

    def _commit(self, ctx: Context, definition: ChaincodeDefinition) -> None:
        if not ctx.client.is_admin:
            raise ContractError(
                f"only an admin may commit a definition; caller of {ctx.client.msp_id} is not", 403
            )
        approvals = self._approvals(ctx, definition)
        approved = sorted(m for m, ok in approvals.items() if ok)
        needed = len(approvals) // 2 + 1
        if len(approved) < needed:
            raise ContractError(
                f"{definition.name} sequence {definition.sequence} has {len(approved)} of the "
                f"{needed} approvals it needs (approved by: {', '.join(approved) or 'nobody'})",
                409,
            )
        ctx.stub.put_state(_definition_key(definition.name), definition.to_json())


def _parse(message: Any, data: bytes) -> Any:
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise ContractError(f"malformed {type(message).__name__}", 400) from exc
    return message


def _collections_of(msg: Any) -> bytes:
    """The collections an approve/commit message carries, serialised deterministically so that
    equal configs give equal definition digests."""
    if not msg.HasField("collections") or not msg.collections.config:
        return b""
    return bytes(msg.collections.SerializeToString(deterministic=True))


def _public(definition: ChaincodeDefinition) -> dict[str, object]:
    policy = policy_pb2.ApplicationPolicy()
    policy.ParseFromString(definition.endorsement_policy)
    return {
        "name": definition.name,
        "sequence": definition.sequence,
        "version": definition.version,
        "package_id": definition.package_id,
        "deregistered": definition.deregistered,
        "external": definition.external,
        "policy_reference": policy.channel_config_policy_reference or None,
        "collections": sorted(_collections(definition.collections))
        if definition.collections
        else [],
    }
