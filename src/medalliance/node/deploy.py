"""Deploy a network's configured contracts through the lifecycle, as its admins would.

For each contract of each channel: every member organisation's admin approves the definition,
then one commits it once a majority approved (Fabric's lifecycle, architecture §4). A definition
already committed with the same package and version is left alone, so reopening a network
deploys nothing twice; a changed one is upgraded to the next sequence. Peers install the
configured packages themselves; the package id is the same everywhere (a hash of the bytes).

In a split set-up (docs/deployment.md) each organisation deploys with its own admin only
(`organizations`): it approves for itself, and commits once a majority has approved, so the
organisation whose `network deploy --org` brings the last approval needed commits the definition.
Organisations deploying at the same time race to commit; one whose approval or commit is refused
because another committed the same definition meanwhile goes on with the next contract.

The admins' access to the network is a `LifecycleSession`: in process for the embedded network,
the Gateway API for a network of processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any, Protocol

from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

from medalliance.contracts.package import build_package, package_id
from medalliance.errors import MedallianceError, PreconditionFailed
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
            current = _definition(first, channel.name, spec.name)
            if _is_configured(current, spec, wanted_id):
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
            try:
                if not _approve_and_commit(
                    session,
                    channel.name,
                    spec,
                    approvers,
                    approve,
                    policy,
                    sequence,
                    ready_first=organizations is not None,
                    on_progress=on_progress,
                ):
                    continue
            except MedallianceError:
                # Organisations deploying at the same time (each on its own machine) race: the
                # definition another one committed meanwhile refuses this approval or commit.
                if not _is_configured(_definition(first, channel.name, spec.name), spec, wanted_id):
                    raise
                if on_progress:
                    on_progress(
                        f"{spec.name} on {channel.name} was committed by another organisation"
                    )
                continue
            changed.append(f"{channel.name}/{spec.name}")
    return changed


def _approve_and_commit(
    session: Callable[[str], LifecycleSession],
    channel: str,
    spec: ContractConfig,
    approvers: list[str],
    approve: bytes,
    policy: bytes,
    sequence: int,
    *,
    ready_first: bool,
    on_progress: Callable[[str], None] | None,
) -> bool:
    """The approvers approve the definition and the first of them commits it (when
    `ready_first`: only once a majority has approved); whether it was committed."""
    first = session(approvers[0])
    approvals = [
        (
            msp_id,
            session(msp_id).submit(channel, "ApproveChaincodeDefinitionForMyOrg", approve),
        )
        for msp_id in approvers
    ]
    for msp_id, tx_id in approvals:
        code = session(msp_id).wait(channel, tx_id)
        if code != 0:
            raise PreconditionFailed(
                f"{msp_id} approving {spec.name} on {channel} failed with code {code}"
            )
    if ready_first and not _ready(first, channel, spec, sequence, policy):
        if on_progress:
            on_progress(
                f"{spec.name} on {channel} awaits other organisations' approvals; "
                "the `network deploy --org` bringing the last one needed commits it"
            )
        return False
    commit = lifecycle_pb2.CommitChaincodeDefinitionArgs(
        sequence=sequence,
        name=spec.name,
        version=spec.version,
        validation_parameter=policy,
    ).SerializeToString()
    # An endorser that has not committed every approval yet reads them at older versions
    # and the commit is invalidated (MVCC): nothing was written, so submit it again.
    for _ in range(COMMIT_ATTEMPTS):
        tx_id = first.submit(channel, "CommitChaincodeDefinition", commit)
        code = first.wait(channel, tx_id)
        if code != MVCC_READ_CONFLICT:
            break
    if code != 0:
        raise PreconditionFailed(f"committing {spec.name} on {channel} failed with code {code}")
    return True


def _definition(session: LifecycleSession, channel: str, name: str) -> dict[str, Any] | None:
    """The contract's committed definition as the session's peer has it; None if none."""
    raw = session.query(channel, "QueryChaincodeDefinition", name)
    found: dict[str, Any] | None = json.loads(raw) if raw else None
    return found


def _is_configured(current: dict[str, Any] | None, spec: ContractConfig, wanted_id: str) -> bool:
    return (
        current is not None
        and not current["deregistered"]
        and current["version"] == spec.version
        and current["package_id"] == wanted_id
    )


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
