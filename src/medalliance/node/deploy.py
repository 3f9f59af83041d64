"""Deploy a network's configured contracts through the lifecycle, as its admins would.

For each contract of each channel: every member organisation's admin approves the definition,
then one commits it once a majority approved (Fabric's lifecycle, architecture §4). A definition
already committed with the same package and version is left alone, so reopening a network
deploys nothing twice; a changed one is upgraded to the next sequence. Peers install the
configured packages themselves; the package id is the same everywhere (a hash of the bytes).

In a split set-up (docs/deployment.md) each organisation deploys with its own admin only
(`organizations`): it approves for itself, and commits once a majority has approved, so the
organisation whose `network up --org` brings the last approval needed commits the definition.

The admins' access to the network is a `LifecycleSession`: in process for the embedded network,
the Gateway API for a network of processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Protocol

from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

from medalliance.contracts.package import build_package, package_id
from medalliance.errors import PreconditionFailed
from medalliance.identity.policy import parse_policy
from medalliance.ledger.tx import Code
from medalliance.node.config import ContractConfig, NetworkConfig

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


def deploy_contracts(
    config: NetworkConfig,
    session: Callable[[str], LifecycleSession],
    on_progress: Callable[[str], None] | None = None,
    organizations: Collection[str] | None = None,
) -> list[str]:
    """Bring every configured contract to its configured definition; returns what changed.

    `organizations` (MSP ids): approve only for these and commit only once the channel's
    majority has approved; None: every member approves at once (one folder with all admins).
    """
    changed = []
    for channel in config.channels:
        members = [o.msp_id for o in config.members(channel)]
        approvers = [m for m in members if organizations is None or m in organizations]
        if not approvers:
            continue
        first = session(approvers[0])
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
            approvals = [
                (
                    msp_id,
                    session(msp_id).submit(
                        channel.name, "ApproveChaincodeDefinitionForMyOrg", approve
                    ),
                )
                for msp_id in approvers
            ]
            for msp_id, tx_id in approvals:
                code = session(msp_id).wait(channel.name, tx_id)
                if code != 0:
                    raise PreconditionFailed(
                        f"{msp_id} approving {spec.name} on {channel.name} failed with code {code}"
                    )
            if organizations is not None and not _ready(
                first, channel.name, spec, sequence, policy
            ):
                if on_progress:
                    on_progress(
                        f"{spec.name} on {channel.name} awaits other organisations' approvals; "
                        "the `network up --org` bringing the last one needed commits it"
                    )
                continue
            commit = lifecycle_pb2.CommitChaincodeDefinitionArgs(
                sequence=sequence,
                name=spec.name,
                version=spec.version,
                validation_parameter=policy,
            ).SerializeToString()
            # An endorser that has not committed every approval yet reads them at older versions
            # and the commit is invalidated (MVCC): nothing was written, so submit it again.
            for _ in range(COMMIT_ATTEMPTS):
                tx_id = first.submit(channel.name, "CommitChaincodeDefinition", commit)
                code = first.wait(channel.name, tx_id)
                if code != MVCC_READ_CONFLICT:
                    break
            if code != 0:
                raise PreconditionFailed(
                    f"committing {spec.name} on {channel.name} failed with code {code}"
                )
            changed.append(f"{channel.name}/{spec.name}")
    return changed


def _ready(
    session: LifecycleSession, channel: str, spec: ContractConfig, sequence: int, policy: bytes
) -> bool:
    """Whether a majority of the channel's organisations approved the definition (as the
    session's own peer has committed it: its own approval, just waited for, comes after every
    earlier one, so a peer that shows it shows those too)."""
    args = lifecycle_pb2.CheckCommitReadinessArgs(
        sequence=sequence, name=spec.name, version=spec.version, validation_parameter=policy
    ).SerializeToString()
    raw = session.query(channel, "CheckCommitReadiness", args)
    approvals: dict[str, bool] = json.loads(raw)["approvals"] if raw else {}
    return sum(approvals.values()) >= len(approvals) // 2 + 1
