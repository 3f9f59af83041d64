"""Deploy a network's configured contracts through the lifecycle, as its admins would.

For each contract of each channel: every member organisation's admin approves the definition,
then one commits it once a majority approved (Fabric's lifecycle, architecture §4). A definition
already committed with the same package and version is left alone, so reopening a network
deploys nothing twice; a changed one is upgraded to the next sequence. Peers install the
configured packages themselves; the package id is the same everywhere (a hash of the bytes).

In a split set-up (docs/deployment.md) each organisation deploys with its own admin only
(`organizations`): it approves for itself, and commits once a majority has approved, so the
organisation whose `network deploy --org` brings the last approval needed commits the definition.

The admins' access to the network is a `LifecycleSession`: in process for the embedded network,
the Gateway API for a network of processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

from medalliance.contracts.package import build_package, package_id
from medalliance.errors import PreconditionFailed
from medalliance.identity.policy import parse_policy
from medalliance.ledger.tx import Code
from medalliance.node.config import ChannelSpec, NetworkConfig

ADMIN = "Admin"
MVCC_READ_CONFLICT = Code.Value("MVCC_READ_CONFLICT")
COMMIT_ATTEMPTS = 3


class LifecycleSession(Protocol):
    """One organisation admin's access to the `_lifecycle` contract of a channel."""

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        """Endorse and order a lifecycle transaction; returns its tx id without waiting."""
        ...

    def wait(self, channel: str, tx_id: str) -> int:
        """The validation code of a submitted transaction, once committed."""
        ...

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        """Evaluate a lifecycle query; None when the contract answers 'not found'."""
        ...


@dataclass(frozen=True, slots=True)
class _Change:
    """One contract whose committed definition differs from the configured one."""

    name: str
    version: str
    sequence: int
    policy: bytes
    approve: bytes
    commit: bytes


def deploy_contracts(
    config: NetworkConfig,
    session: Callable[[str], LifecycleSession],
    on_progress: Callable[[str], None] | None = None,
    organizations: Collection[str] | None = None,
) -> list[str]:
    """Bring every configured contract to its configured definition; returns what changed.

    `organizations` (MSP ids): approve only for these and commit only once the channel's
    majority has approved; None: every member approves at once (one folder with all admins).

    The contracts of a channel move together: every approval of every changed contract is
    submitted before any is waited for, then every commit, so a channel of nine contracts
    takes two rounds of ordering rather than eighteen (each contract has its own lifecycle
    keys, so transactions of different contracts in one block do not conflict)."""
    changed: list[str] = []
    for channel in config.channels:
        members = [o.msp_id for o in config.members(channel)]
        approvers = [m for m in members if organizations is None or m in organizations]
        if not approvers:
            continue
        first = session(approvers[0])
        changes = _changes(config, channel, first, on_progress)
        approvals = [
            (
                msp_id,
                change,
                session(msp_id).submit(
                    channel.name, "ApproveChaincodeDefinitionForMyOrg", change.approve
                ),
            )
            for change in changes
            for msp_id in approvers
        ]
        for msp_id, change, tx_id in approvals:
            code = session(msp_id).wait(channel.name, tx_id)
            if code != 0:
                raise PreconditionFailed(
                    f"{msp_id} approving {change.name} on {channel.name} failed with code {code}"
                )
        if organizations is not None:
            awaiting = [c for c in changes if not _ready(first, channel.name, c)]
            for change in awaiting:
                if on_progress:
                    on_progress(
                        f"{change.name} on {channel.name} awaits other organisations' "
                        "approvals; the `network deploy --org` bringing the last one commits it"
                    )
            changes = [c for c in changes if c not in awaiting]
        # An endorser that has not committed every approval yet reads them at older versions
        # and the commit is invalidated (MVCC): nothing was written, so submit it again.
        waiting = changes
        for _ in range(COMMIT_ATTEMPTS):
            submitted = [
                (change, first.submit(channel.name, "CommitChaincodeDefinition", change.commit))
                for change in waiting
            ]
            codes = [(change, first.wait(channel.name, tx_id)) for change, tx_id in submitted]
            for change, code in codes:
                if code not in (0, MVCC_READ_CONFLICT):
                    raise _commit_failed(change, channel.name, code)
            waiting = [change for change, code in codes if code == MVCC_READ_CONFLICT]
            if not waiting:
                break
        if waiting:
            raise _commit_failed(waiting[0], channel.name, MVCC_READ_CONFLICT)
        changed.extend(f"{channel.name}/{change.name}" for change in changes)
    return changed


def _changes(
    config: NetworkConfig,
    channel: ChannelSpec,
    first: LifecycleSession,
    on_progress: Callable[[str], None] | None,
) -> list[_Change]:
    """The channel's contracts whose committed definition is missing or another one; a
    definition committed with the same package and version is left alone."""
    changes = []
    for spec in channel.contracts:
        label = spec.package_label
        wanted_id = package_id(build_package(label, spec.package), label)
        raw = first.query(channel.name, "QueryChaincodeDefinition", spec.name)
        current = json.loads(raw) if raw else None
        if (
            current is not None
            and not current["deregistered"]
            and current["version"] == spec.version
            and current["package_id"] == wanted_id
        ):
            continue
        sequence = (int(current["sequence"]) if current else 0) + 1
        if on_progress:
            on_progress(
                f"deploying {spec.name} {spec.version} on {channel.name} (sequence {sequence})"
            )
        policy = policy_pb2.ApplicationPolicy(
            signature_policy=parse_policy(config.endorsement_policy(channel, spec))
        ).SerializeToString()
        approve = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(
            sequence=sequence,
            name=spec.name,
            version=spec.version,
            validation_parameter=policy,
            source=lifecycle_pb2.ChaincodeSource(
                local_package=lifecycle_pb2.ChaincodeSource.Local(package_id=wanted_id)
            ),
        ).SerializeToString()
        commit = lifecycle_pb2.CommitChaincodeDefinitionArgs(
            sequence=sequence,
            name=spec.name,
            version=spec.version,
            validation_parameter=policy,
        ).SerializeToString()
        changes.append(_Change(spec.name, spec.version, sequence, policy, approve, commit))
    return changes


def _ready(session: LifecycleSession, channel: str, change: _Change) -> bool:
    """Whether a majority of the channel's organisations approved the definition (as the
    session's own peer has committed it: its own approval, just waited for, comes after every
    earlier one, so a peer that shows it shows those too)."""
    args = lifecycle_pb2.CheckCommitReadinessArgs(
        sequence=change.sequence,
        name=change.name,
        version=change.version,
        validation_parameter=change.policy,
    ).SerializeToString()
    raw = session.query(channel, "CheckCommitReadiness", args)
    approvals: dict[str, bool] = json.loads(raw)["approvals"] if raw else {}
    return sum(approvals.values()) >= len(approvals) // 2 + 1


def _commit_failed(change: _Change, channel: str, code: int) -> PreconditionFailed:
    return PreconditionFailed(f"committing {change.name} on {channel} failed with code {code}")
